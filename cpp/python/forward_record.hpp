// What a recurrent forward keeps for its backward, as one typed object: Python holds it (the ``saved``
// of rnnkit.kernels' forward results) and hands it back, but sees nothing inside and cannot change it,
// so the backward trusts its shapes without checking them again.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "python/arrays.hpp"
#include "simd/recurrent_call.hpp"

namespace rnnkit {

class ForwardRecord {
 public:
  // The records a forward of `cell` over `problem` fills (recurrent_call.hpp), allocated; copies of the
  // weights (and of the embedding table) it used, so that a later in-place update of the caller's
  // arrays cannot change the backward; the lengths and the recurrent mask it ran with.
  template <class T>
  static std::unique_ptr<ForwardRecord> allocate(Cell cell, Activation activation, const Problem& problem,
                                                 const py::object& lengths,
                                                 const py::array_t<T>& kernel, const py::array_t<T>& recurrent_kernel,
                                                 const py::array_t<T>* embeddings, const py::object& recurrent_mask) {
    std::unique_ptr<ForwardRecord> r(new ForwardRecord());
    r->cell_ = cell;
    r->activation_ = activation;
    r->float_size_ = sizeof(T);
    r->problem_ = problem;
    r->lengths_ = lengths;
    r->problem_.lengths = lengths.is_none() ? nullptr : py::cast<py::array_t<std::int64_t>>(lengths).data();
    const index_t rows = packed_rows(problem), B = problem.batch, F = problem.features, H = problem.units;
    r->kernel_ = copy_of(kernel);
    r->recurrent_kernel_ = copy_of(recurrent_kernel);
    if (embeddings) {
      r->embeddings_ = copy_of(*embeddings);
      r->ids_packed_ = new_array<std::int32_t>({rows}, "the packed ids");
    } else {
      r->x_packed_ = new_array<T>({rows, F}, "x_packed");
    }
    r->states_ = new_array<T>({B + rows, H}, "states");
    const RecordSet kept = records_of(cell);
    if (kept.gates) r->gates_ = new_array<T>({rows, kGateRecordBlocks * H}, "gates");
    if (kept.cells) {
      r->cells_ = new_array<T>({B + rows, H}, "cells");
      r->tanh_cells_ = new_array<T>({rows, H}, "tanh_cells");
    }
    if (!recurrent_mask.is_none()) {
      r->recurrent_mask_ = copy_of(py::cast<py::array_t<T>>(recurrent_mask));
      r->masked_states_ = new_array<T>({B + rows, H}, "masked_states");
    }
    return r;
  }

  Cell cell() const { return cell_; }
  std::size_t float_size() const { return float_size_; }
  const Problem& problem() const { return problem_; }
  bool tokens() const { return embeddings_.has_value(); }
  index_t rows() const { return packed_rows(problem_); }  // the real steps of all sequences
  index_t vocabulary() const { return tokens() ? embeddings_->shape(0) : 0; }

  // Where the forward writes its records.
  template <class T>
  Records<T> records() {
    Records<T> r;
    r.x_packed = data<T>(x_packed_);
    r.ids_packed = ids_packed_ ? ids_packed_->mutable_data() : nullptr;
    r.states = data<T>(states_);
    r.gates = data<T>(gates_);
    r.cells = data<T>(cells_);
    r.tanh_cells = data<T>(tanh_cells_);
    r.masked_states = data<T>(masked_states_);
    return r;
  }

  // The arguments a backward shares with its forward; the caller adds the loss gradients and the
  // gradients' arrays. `threads` may differ from the forward's.
  template <class T>
  BackwardCall<T> backward_call(int threads) {
    BackwardCall<T> call;
    call.problem = problem_;
    call.activation = activation_;
    call.problem.threads = threads;
    if (tokens()) {
      call.input.embeddings = data<T>(embeddings_);
      call.input.vocabulary = vocabulary();
    }
    call.weights.kernel = data<T>(kernel_);
    call.weights.recurrent_kernel = data<T>(recurrent_kernel_);
    call.recurrent_mask = data<T>(recurrent_mask_);
    const Records<T> written = records<T>();
    call.records = {written.x_packed, written.ids_packed, written.states,       written.gates,
                    written.cells,    written.tanh_cells, written.masked_states};
    return call;
  }

  std::string describe() const {
    static const char* const names[kCells] = {"simple_rnn", "lstm", "gru"};
    return std::string("<rnnkit ") + names[static_cast<int>(cell_)] + " forward record: batch " +
           std::to_string(problem_.batch) + ", timesteps " + std::to_string(problem_.timesteps) + ", " +
           (tokens() ? "token ids" : std::to_string(problem_.features) + " features") + ", " +
           std::to_string(problem_.units) + " units, " + (float_size_ == 4 ? "float32" : "float64") + ">";
  }

 private:
  ForwardRecord() = default;

  template <class T>
  static T* data(std::optional<py::array>& a) {
    return a ? static_cast<T*>(a->mutable_data()) : nullptr;
  }

  static index_t packed_rows(const Problem& problem) {
    if (!problem.lengths) return problem.batch * problem.timesteps;
    index_t rows = 0;
    for (index_t i = 0; i < problem.batch; ++i) rows += problem.lengths[i];
    return rows;
  }

  Cell cell_ = Cell::simple_rnn;
  Activation activation_ = Activation::tanh;
  std::size_t float_size_ = 4;
  Problem problem_;
  py::object lengths_;  // None or the int64 array problem_.lengths points into
  std::optional<py::array> kernel_, recurrent_kernel_, embeddings_, recurrent_mask_;
  std::optional<py::array> x_packed_, states_, gates_, cells_, tanh_cells_, masked_states_;
  std::optional<py::array_t<std::int32_t>> ids_packed_;
};

}  // namespace rnnkit
