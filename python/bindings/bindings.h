// The parts of the _rcsim extension module, each registered by module.cc.
#pragma once

#include <pybind11/pybind11.h>

namespace rcsim::python {

void register_kernels(pybind11::module_& m);   // kernel_bindings.cc
void register_plans(pybind11::module_& m);     // plan_bindings.cc: fault specs, units, PRNG
void register_dispatch(pybind11::module_& m);  // plan_bindings.cc: ATOM's decision table

}  // namespace rcsim::python
