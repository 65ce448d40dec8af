// The arguments of a recurrent forward call, checked: each a C-contiguous array of the call's float
// type with the shape its cell expects, or a clear exception naming it, what was expected and what came.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "python/arrays.hpp"
#include "python/module.hpp"
#include "simd/recurrent_call.hpp"

namespace rnnkit {

// What the binding knows of a cell besides its arithmetic.
struct CellSpec {
  Cell cell;
  const char* name;
  const char* gate_expr;  // how a message writes G = gate_blocks(cell)·units
  bool split_bias;        // GRU: bias (2, 3*units)
};

inline constexpr CellSpec kCellSpecs[kCells] = {{Cell::simple_rnn, "simple_rnn", "units", false},
                                                {Cell::lstm, "lstm", "4*units", false},
                                                {Cell::gru, "gru", "3*units", true}};

// The arguments of a forward call, checked.
template <class T>
struct ForwardInputs {
  Problem problem;
  bool tokens = false;
  py::array_t<T> x;               // (B,T,F), dense inputs
  py::array_t<std::int32_t> ids;  // (B,T), token inputs
  py::array_t<T> embeddings;      // (V,F), token inputs
  py::array_t<T> kernel, recurrent_kernel, bias;
  py::object h0, c0;  // None or py::array_t<T>
  const T* h0_data = nullptr;
  const T* c0_data = nullptr;
  py::object recurrent_mask;  // None or py::array_t<T> (batch, units)
  const T* mask_data = nullptr;
  py::object lengths;  // int64 array or None
  std::string padding;

  const char* reference() const { return tokens ? "embeddings" : "x"; }
  index_t vocabulary() const { return tokens ? embeddings.shape(0) : 0; }
};

inline void check_not_empty(const Problem& problem, const std::vector<index_t>& shape, const std::string& what) {
  if (problem.batch == 0 || problem.timesteps == 0 || problem.features == 0) {
    throw py::value_error(what + ": expected at least one sequence of at least one timestep of at least one feature, "
                                 "got shape " + shape_string(shape));
  }
}

template <class T>
void check_weights_and_states(const CellSpec& cell, ForwardInputs<T>& in, const py::handle& kernel,
                              const py::handle& recurrent_kernel, const py::handle& bias, const py::handle& h0,
                              const py::handle& c0, const py::handle& recurrent_mask, const py::handle& lengths,
                              const std::string& padding) {
  Problem& problem = in.problem;
  const std::string ref = in.reference();
  in.recurrent_kernel = as_float_array<T>(recurrent_kernel, "recurrent_kernel", ref);
  if (in.recurrent_kernel.ndim() != 2 || in.recurrent_kernel.shape(0) == 0) {
    throw py::value_error("recurrent_kernel: expected a 2-D array (units, " + std::string(cell.gate_expr) +
                          ") with units >= 1, got shape " + shape_string(shape_of(in.recurrent_kernel)));
  }
  problem.units = in.recurrent_kernel.shape(0);
  const index_t H = problem.units;
  const std::string gates = cell.gate_expr;
  const index_t G = gate_blocks(cell.cell) * H;
  expect_shape(in.recurrent_kernel, "recurrent_kernel", {H, G}, "(units, " + gates + ")");
  in.kernel = as_float_array<T>(kernel, "kernel", ref);
  expect_shape(in.kernel, "kernel", {problem.features, G}, "(features, " + gates + ")");
  in.bias = as_float_array<T>(bias, "bias", ref);
  if (cell.split_bias) {
    expect_shape(in.bias, "bias", {2, G}, "(2, " + gates + ")");
  } else {
    expect_shape(in.bias, "bias", {G}, "(" + gates + ",)");
  }
  in.h0 = checked_optional<T>(h0, "h0", {problem.batch, H}, "(batch, units)", ref);
  in.c0 = checked_optional<T>(c0, "c0", {problem.batch, H}, "(batch, units)", ref);
  in.h0_data = data_or_null<T>(in.h0);
  in.c0_data = data_or_null<T>(in.c0);
  in.recurrent_mask = checked_optional<T>(recurrent_mask, "recurrent_mask", {problem.batch, H}, "(batch, units)", ref);
  in.mask_data = data_or_null<T>(in.recurrent_mask);
  in.lengths = checked_lengths(lengths, problem.batch, problem.timesteps);
  problem.pre_padding = checked_padding(padding);
  in.padding = padding;
  if (!in.lengths.is_none()) problem.lengths = py::cast<py::array_t<std::int64_t>>(in.lengths).data();
  problem.threads = current_threads();
}

// x (B,T,F), or with packed x (N,F) holding the real steps of sequences of the given lengths in the
// kernels' packed order; reverse (packed only, checked by the caller) runs each sequence backwards.
template <class T>
ForwardInputs<T> check_dense(const CellSpec& cell, const py::array& x, const py::handle& kernel,
                             const py::handle& recurrent_kernel, const py::handle& bias, const py::handle& h0,
                             const py::handle& c0, const py::handle& recurrent_mask, const py::handle& lengths,
                             const std::string& padding, bool packed, bool reverse) {
  ForwardInputs<T> in;
  in.x = as_float_array<T>(x, "x");
  Problem& problem = in.problem;
  if (packed) {
    if (in.x.ndim() != 2) {
      throw py::value_error("x: packed, expected a 2-D array (rows, features) of the sequences' real steps, got "
                            "shape " + shape_string(shape_of(in.x)));
    }
    problem.features = in.x.shape(1);
    checked_packed_lengths(lengths, in.x.shape(0), problem.batch, problem.timesteps);
  } else {
    if (in.x.ndim() != 3) {
      throw py::value_error("x: expected a 3-D array (batch, timesteps, features), got shape " +
                            shape_string(shape_of(in.x)));
    }
    problem.batch = in.x.shape(0);
    problem.timesteps = in.x.shape(1);
    problem.features = in.x.shape(2);
  }
  problem.packed = packed;
  problem.reverse = reverse;
  check_not_empty(problem, shape_of(in.x), "x");
  check_weights_and_states(cell, in, kernel, recurrent_kernel, bias, h0, c0, recurrent_mask, lengths, padding);
  return in;
}

template <class T>
ForwardInputs<T> check_tokens(const CellSpec& cell, const py::handle& x, const py::array& embeddings,
                              const py::handle& kernel, const py::handle& recurrent_kernel, const py::handle& bias,
                              const py::handle& h0, const py::handle& c0, const py::handle& recurrent_mask,
                              const py::handle& lengths, const std::string& padding) {
  ForwardInputs<T> in;
  in.tokens = true;
  in.embeddings = as_float_array<T>(embeddings, "embeddings", "embeddings");
  if (in.embeddings.ndim() != 2 || in.embeddings.shape(0) < 1 ||
      in.embeddings.shape(0) > index_t(INT32_MAX)) {
    throw py::value_error("embeddings: expected a 2-D array (vocabulary, features) with 1 to 2^31-1 rows, got shape " +
                          shape_string(shape_of(in.embeddings)));
  }
  in.ids = checked_ids<std::int32_t>(x, in.embeddings.shape(0), "x");
  if (in.ids.ndim() != 2) {
    throw py::value_error("x: with embeddings, expected token ids of shape (batch, timesteps), got shape " +
                          shape_string(shape_of(in.ids)));
  }
  Problem& problem = in.problem;
  problem.batch = in.ids.shape(0);
  problem.timesteps = in.ids.shape(1);
  problem.features = in.embeddings.shape(1);
  check_not_empty(problem, {problem.batch, problem.timesteps, problem.features}, "x (token ids) with embeddings");
  check_weights_and_states(cell, in, kernel, recurrent_kernel, bias, h0, c0, recurrent_mask, lengths, padding);
  return in;
}

}  // namespace rnnkit
