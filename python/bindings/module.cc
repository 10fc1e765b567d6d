// The _rcsim extension module: rcsim's C++ kernels, fault-spec parser, unit orders, PRNG and
// decision table, wrapped by the pure-Python package python/rcsim/. Errors cross as Python
// exceptions: InvalidInput (bad input, nothing written) as ValueError, a KernelError as the
// rcsim.errors class of its failure class, so a dispatcher's except clauses meet what they would
// meet from AITER.
#include <pybind11/pybind11.h>

#include <string>

#include "core/check.h"
#include "core/errors.h"
#include "python/bindings/bindings.h"

namespace py = pybind11;

PYBIND11_MODULE(_rcsim, m) {
  m.doc() = "rcsim's C++ core for Python (use the rcsim package, not this module)";
#if RCSIM_PYTHON_GPU
  m.attr("has_gpu_backend") = true;
#else
  m.attr("has_gpu_backend") = false;
#endif
  rcsim::python::register_kernels(m);
  rcsim::python::register_plans(m);
  rcsim::python::register_dispatch(m);

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const rcsim::InvalidInput& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const rcsim::KernelError& e) {
      // rcsim.errors builds the exception of the right class with its attributes set.
      py::object make = py::module_::import("rcsim.errors").attr("from_cpp");
      py::object exc = make(std::string(rcsim::failure_class_name(e.failure_class())), e.kernel(),
                            std::string(e.what()), e.injected());
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    }
  });
}
