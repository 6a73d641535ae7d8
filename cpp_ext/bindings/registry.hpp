/// @file registry.hpp
/// @brief Self-registration of binding translation units.
///
/// Each bindings/*.cpp file defines one function that adds its classes to the module and
/// registers it with DMPC_REGISTER_BINDINGS(name, order, fn). module.cpp calls all registered
/// functions in ascending `order` (base classes first), so adding a binding file never needs
/// an edit of module.cpp.
#pragma once

#include <pybind11/pybind11.h>

#include <functional>
#include <string>
#include <vector>

namespace dmpc::bindings {

struct BindingEntry {
  std::string name;
  int order;
  std::function<void(pybind11::module_&)> fn;
};

std::vector<BindingEntry>& registry();

struct Registrar {
  Registrar(const char* name, int order, void (*fn)(pybind11::module_&)) {
    registry().push_back({name, order, fn});
  }
};

}  // namespace dmpc::bindings

#define DMPC_REGISTER_BINDINGS(NAME, ORDER, FN) \
  static ::dmpc::bindings::Registrar dmpc_registrar_##NAME(#NAME, ORDER, FN)
