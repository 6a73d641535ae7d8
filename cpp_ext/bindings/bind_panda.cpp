/// @file bind_panda.cpp
/// @brief Bindings of models/panda.hpp: PandaDynamics and FrameTranslationCost.
///
/// This file does not include pinocchio (panda.hpp hides it behind PIMPL), so it compiles fast.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "dmpc/models/panda.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {

void bind_panda(py::module_& m) {
  py::classh<PandaData, DynamicsData>(m, "PandaData",
                                      "Buffers of PandaDynamics (xdot (14,), fx (14, 14), fu (14, 7)) "
                                      "plus an opaque pinocchio::Data.");

  py::classh<PandaDynamics, DynamicsModel>(
      m, "PandaDynamics",
      "Franka Emika Panda, torque controlled, from a URDF with pinocchio.\n\n"
      "State x = [q; v] (14,), control u = joint torques (7,), nq = 7.\n"
      "xdot = [v; a], a = ABA(q, v, u - damping * v) (articulated-body algorithm).\n"
      "fx = [[0, I], [da/dq, da/dv - damping * Minv]] (14, 14); fu = [[0], [Minv]] (14, 7),\n"
      "from pinocchio.computeABADerivatives.\n\n"
      "Args:\n"
      "    urdf_path: URDF of a fixed-base arm with nq = nv = 7 (fingers locked), e.g.\n"
      "        dmpc_core.models.panda.default_urdf_path().\n"
      "    damping: viscous joint damping [N m s/rad], >= 0.\n\n"
      "Raises ValueError if the file is missing, does not parse, or is not 7-DoF.")
      .def(py::init([](const std::string& urdf_path, double damping) {
             py::gil_scoped_release release;  // parsing a URDF takes a few ms
             return std::make_shared<PandaDynamics>(urdf_path, damping);
           }),
           py::arg("urdf_path"), py::arg("damping") = 0.0)
      .def_property_readonly("damping", &PandaDynamics::damping)
      .def_property_readonly("urdf_path", &PandaDynamics::urdf_path)
      .def_property_readonly("joint_names", &PandaDynamics::joint_names, "7 joint names in state order")
      .def_property_readonly("frame_names", &PandaDynamics::frame_names, "all frame names of the model")
      .def_property_readonly("lower_position_limit", &PandaDynamics::lower_position_limit, "(7,) [rad]")
      .def_property_readonly("upper_position_limit", &PandaDynamics::upper_position_limit, "(7,) [rad]")
      .def_property_readonly("velocity_limit", &PandaDynamics::velocity_limit, "(7,) [rad/s]")
      .def_property_readonly("effort_limit", &PandaDynamics::effort_limit, "(7,) [N m]")
      .def("has_frame", &PandaDynamics::has_frame, py::arg("frame"))
      .def("mass_matrix", &PandaDynamics::mass_matrix, py::arg("q"),
           "Joint-space inertia matrix M(q), (7, 7) symmetric; q (7,).")
      .def("gravity", &PandaDynamics::gravity, py::arg("q"),
           "Generalized gravity torques g(q) (7,) (holding torque at rest); q (7,).")
      .def("frame_position", &PandaDynamics::frame_position, py::arg("q"), py::arg("frame") = "panda_hand_tcp",
           "World position (3,) of a frame at q (7,).")
      .def("frame_jacobian", &PandaDynamics::frame_jacobian, py::arg("q"), py::arg("frame") = "panda_hand_tcp",
           "Translation Jacobian d p_frame / d q, (3, 7), world-aligned axes; q (7,).")
      .def("energy", &PandaDynamics::energy, py::arg("x"),
           "Mechanical energy 0.5 v^T M(q) v + V(q) [J]; x = [q; v] (14,). V = sum m_i g0 z_i.");

  py::classh<FrameTranslationCostData, CostData>(
      m, "FrameTranslationCostData",
      "CostData of FrameTranslationCost plus residual r = p - p_ref (3,) and jacobian dp/dq (3, 7).")
      .def_readonly("residual", &FrameTranslationCostData::residual)
      .def_readonly("jacobian", &FrameTranslationCostData::jacobian);

  py::classh<FrameTranslationCost, CostModel>(
      m, "FrameTranslationCost",
      "l(x) = 0.5 * weight * ||p_frame(q) - p_ref||^2 for x = [q; v] (14,), u (7,) unused.\n\n"
      "lx = [weight J^T r; 0]; lxx = [[weight J^T J, 0], [0, 0]] is the Gauss-Newton Hessian\n"
      "(as crocoddyl's residual costs); lu, luu, lux are zero. J = dp/dq (3, 7).\n\n"
      "Args:\n"
      "    model: PandaDynamics providing the kinematics.\n"
      "    frame_name: e.g. 'panda_hand_tcp'.\n"
      "    p_ref: (3,) world position.\n"
      "    weight: >= 0.")
      .def(py::init<std::shared_ptr<const PandaDynamics>, const std::string&, const RefV&, double>(),
           py::arg("model"), py::arg("frame_name"), py::arg("p_ref"), py::arg("weight") = 1.0)
      .def_property(
          "p_ref", [](const FrameTranslationCost& c) { return Vec(c.reference()); },
          [](FrameTranslationCost& c, const RefV& p) { c.set_reference(p); },
          "reference position (3,); settable (not while a solver is running)")
      .def("set_reference", &FrameTranslationCost::set_reference, py::arg("p_ref"))
      .def_property_readonly("weight", &FrameTranslationCost::weight)
      .def_property_readonly("frame_name", &FrameTranslationCost::frame)
      .def_property_readonly("model", &FrameTranslationCost::model);
}

}  // namespace
DMPC_REGISTER_BINDINGS(panda, 30, bind_panda);
}  // namespace dmpc::bindings
