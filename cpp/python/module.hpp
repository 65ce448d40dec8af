// What the parts of rnnkit._core share.
#pragma once

#include <pybind11/pybind11.h>

namespace rnnkit {

// The thread count set with rnnkit.set_num_threads.
int current_threads();

// Adds {simple_rnn,lstm,gru}_{forward,backward} and ForwardRecord to the module (recurrent.cpp).
void bind_recurrent(pybind11::module_& m);

// Runs a function template for float or double, by the float type of the arrays (4 or 8 bytes).
#define RNNKIT_BY_FLOAT_TYPE(impl, size, ...) (size == 4 ? impl<float>(__VA_ARGS__) : impl<double>(__VA_ARGS__))

}  // namespace rnnkit
