// The Python binding of the native kernels (plain CPython API, no binding
// library): `handlers()` returns the XLA FFI handlers as capsules for
// jax.ffi.register_ffi_target; `threads(n)` sets the workers a call may use,
// `isa()` names the instruction set chosen, `profile(on)` reads the timers.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "profile.h"
#include "xla/ffi/api/c_api.h"

namespace jaxrnn {
extern "C" XLA_FFI_Error* JaxrnnForward(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxrnnBackward(XLA_FFI_CallFrame* call_frame);
int pool_threads();
void set_pool_threads(int n, bool forced);
const char* isa_name();
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

// profile(on): switches timing on or off and returns the seconds per phase
// since the last call (then resets them).
PyObject* profile(PyObject*, PyObject* args) {
  int on;
  if (!PyArg_ParseTuple(args, "p", &on)) return nullptr;
  static const char* names[jaxrnn::kNumPhases] = {"pack", "recurrent", "gate_math",
                                                  "barrier", "carries", "weights"};
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

// threads(n, forced): the workers a call may use from now on (n <= 0: the
// default, JAXRNN_NUM_THREADS or the usable cores), and whether every call
// uses them however small its work; returns the previous number.
PyObject* threads(PyObject*, PyObject* args) {
  int n, forced = 0;
  if (!PyArg_ParseTuple(args, "i|p", &n, &forced)) return nullptr;
  const int before = jaxrnn::pool_threads();
  jaxrnn::set_pool_threads(n, forced != 0);
  return PyLong_FromLong(before);
}

PyObject* isa(PyObject*, PyObject*) { return PyUnicode_FromString(jaxrnn::isa_name()); }

PyMethodDef methods[] = {
    {"threads", threads, METH_VARARGS,
     "threads(n, forced=False) -> previous: workers per call (n <= 0: default)."},
    {"isa", isa, METH_NOARGS, "The instruction set the kernels run with."},
    {"handlers", handlers, METH_NOARGS,
     "The FFI handlers {'forward', 'backward'} as capsules."},
    {"profile", profile, METH_VARARGS,
     "profile(on) -> {phase: seconds} since the last call; then timing on/off."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                      "jaxrnn's native CPU kernels (XLA FFI handlers).", -1,
                      methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
