// The Python binding of the native kernels (plain CPython API, no binding
// library): `handlers()` returns the XLA FFI handlers as capsules for
// jax.ffi.register_ffi_target, and `set_gemm(sgemm, dgemm)` takes the BLAS
// entry points as capsules (scipy.linalg.cython_blas.__pyx_capi__).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "blas.h"
#include "profile.h"
#include "xla/ffi/api/c_api.h"

namespace jaxrnn {
extern "C" XLA_FFI_Error* JaxrnnForward(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxrnnBackward(XLA_FFI_CallFrame* call_frame);
}  // namespace jaxrnn

namespace {

PyObject* handlers(PyObject*, PyObject*) {
  PyObject* forward = PyCapsule_New(reinterpret_cast<void*>(&jaxrnn::JaxrnnForward),
                                    nullptr, nullptr);
  PyObject* backward = PyCapsule_New(reinterpret_cast<void*>(&jaxrnn::JaxrnnBackward),
                                     nullptr, nullptr);
  if (!forward || !backward) {
    Py_XDECREF(forward);
    Py_XDECREF(backward);
    return nullptr;
  }
  PyObject* result = Py_BuildValue("{sNsN}", "forward", forward, "backward", backward);
  return result;
}

void* capsule_pointer(PyObject* capsule) {
  if (!PyCapsule_CheckExact(capsule)) {
    PyErr_SetString(PyExc_TypeError, "set_gemm: expected capsules");
    return nullptr;
  }
  return PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule));
}

PyObject* set_gemm(PyObject*, PyObject* args) {
  PyObject *s, *d;
  if (!PyArg_ParseTuple(args, "OO", &s, &d)) return nullptr;
  void* sp = capsule_pointer(s);
  if (!sp) return nullptr;
  void* dp = capsule_pointer(d);
  if (!dp) return nullptr;
  jaxrnn::sgemm_ptr = reinterpret_cast<jaxrnn::FortranGemm<float>*>(sp);
  jaxrnn::dgemm_ptr = reinterpret_cast<jaxrnn::FortranGemm<double>*>(dp);
  Py_RETURN_NONE;
}

// profile(on): switches timing on or off and returns the seconds per phase
// since the last call (then resets them).
PyObject* profile(PyObject*, PyObject* args) {
  int on;
  if (!PyArg_ParseTuple(args, "p", &on)) return nullptr;
  static const char* names[jaxrnn::kNumPhases] = {"projection", "recurrent",
                                                  "gate_math", "carries",
                                                  "weights"};
  PyObject* result = PyDict_New();
  if (!result) return nullptr;
  for (int i = 0; i < jaxrnn::kNumPhases; ++i) {
    const int64_t ns = jaxrnn::profile().ns[i].exchange(0);
    PyObject* seconds = PyFloat_FromDouble(ns * 1e-9);
    if (!seconds || PyDict_SetItemString(result, names[i], seconds) < 0) {
      Py_XDECREF(seconds);
      Py_DECREF(result);
      return nullptr;
    }
    Py_DECREF(seconds);
  }
  jaxrnn::profile().on.store(on != 0);
  return result;
}

PyMethodDef methods[] = {
    {"handlers", handlers, METH_NOARGS,
     "The FFI handlers {'forward', 'backward'} as capsules."},
    {"set_gemm", set_gemm, METH_VARARGS,
     "set_gemm(sgemm, dgemm): the Fortran BLAS GEMMs, as capsules."},
    {"profile", profile, METH_VARARGS,
     "profile(on) -> {phase: seconds} since the last call; then timing on/off."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                      "jaxrnn's native CPU kernels (XLA FFI handlers).", -1,
                      methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
