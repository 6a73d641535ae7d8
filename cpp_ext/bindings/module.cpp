/// @file module.cpp
/// @brief The dmpc_core._core extension module: runs every registered binding function.
#include <algorithm>

#include "registry.hpp"

namespace dmpc::bindings {
std::vector<BindingEntry>& registry() {
  static std::vector<BindingEntry> entries;
  return entries;
}
}  // namespace dmpc::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "dmpc compiled core: dynamics models, costs, SLQ and MPPI solvers (no ROS).";
  auto entries = dmpc::bindings::registry();
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.order < b.order; });
  for (const auto& e : entries) e.fn(m);
}
