// What the parts of rnnkit._core share.
#pragma once

#include <pybind11/pybind11.h>

namespace rnnkit {

// The thread count set with rnnkit.set_num_threads.
int current_threads();

// Adds {simple_rnn,lstm,gru}_{forward,backward} to the module (recurrent.cpp).
void bind_recurrent(pybind11::module_& m);

}  // namespace rnnkit
