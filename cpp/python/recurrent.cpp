// rnnkit._core's recurrent entry points: one forward and one backward for all three cells, for dense
// inputs x (B,T,F) or token ids into an embedding table. They check and convert the arguments, allocate
// the results, and run a kernel with the GIL released.
#include <algorithm>
#include <string>
#include <vector>

#include "../rnnkit/kernel_table.hpp"
#include "arrays.hpp"
#include "module.hpp"

namespace rnnkit {
namespace {

struct CellSpec {
  const char* name;
  index_t gates;                   // G: kernel is (features, G*units)
  const char* gate_expr;           // how a message writes G*units
  bool split_bias;                 // GRU: bias (2, 3*units)
  std::vector<const char*> saved;  // arrays kept for the backward, after kernel, recurrent_kernel and the input
  index_t ring_columns;            // per unit: the backward's d_gates width
};

const CellSpec kSimpleRnn{"simple_rnn", 1, "units", false, {"states"}, 1};
const CellSpec kLstm{"lstm", 4, "4*units", false, {"gates", "states", "cells", "tanh_cells"}, 4};
const CellSpec kGru{"gru", 3, "3*units", true, {"gates", "states"}, 4};

enum class CellId { simple_rnn, lstm, gru };

CellId cell_id(const CellSpec& cell) {
  return &cell == &kLstm ? CellId::lstm : &cell == &kGru ? CellId::gru : CellId::simple_rnn;
}

index_t packed_rows(const Problem& p) {
  if (!p.lengths) return p.batch * p.timesteps;
  index_t rows = 0;
  for (index_t i = 0; i < p.batch; ++i) rows += p.lengths[i];
  return rows;
}

// Shape of a saved array (layout.hpp: N packed rows; vocabulary V for token inputs).
std::vector<index_t> saved_shape(const CellSpec& cell, const std::string& name, const Problem& p, index_t rows,
                                 index_t vocabulary) {
  const index_t H = p.units;
  if (name == "kernel") return {p.features, cell.gates * H};
  if (name == "recurrent_kernel") return {H, cell.gates * H};
  if (name == "x_packed") return {rows, p.features};
  if (name == "embeddings") return {vocabulary, p.features};
  if (name == "gates") return {rows, 4 * H};
  if (name == "states" || name == "cells" || name == "masked_states") return {p.batch + rows, H};
  return {rows, H};  // tanh_cells
}

std::vector<std::string> saved_names(const CellSpec& cell, bool tokens, bool masked) {
  std::vector<std::string> names{"kernel", "recurrent_kernel", tokens ? "embeddings" : "x_packed"};
  names.insert(names.end(), cell.saved.begin(), cell.saved.end());
  if (masked) names.push_back("masked_states");  // with recurrent dropout: h_{t-1} times the mask
  return names;
}

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

void check_not_empty(const Problem& p, const std::vector<index_t>& shape, const std::string& what) {
  if (p.batch == 0 || p.timesteps == 0 || p.features == 0) {
    throw py::value_error(what + ": expected at least one sequence of at least one timestep of at least one feature, "
                                 "got shape " + shape_string(shape));
  }
}

template <class T>
void check_weights_and_states(const CellSpec& cell, ForwardInputs<T>& in, const py::handle& kernel,
                              const py::handle& recurrent_kernel, const py::handle& bias, const py::handle& h0,
                              const py::handle& c0, const py::handle& recurrent_mask, const py::handle& lengths,
                              const std::string& padding) {
  Problem& p = in.problem;
  const std::string ref = in.reference();
  in.recurrent_kernel = as_float_array<T>(recurrent_kernel, "recurrent_kernel", ref);
  if (in.recurrent_kernel.ndim() != 2 || in.recurrent_kernel.shape(0) == 0) {
    throw py::value_error("recurrent_kernel: expected a 2-D array (units, " + std::string(cell.gate_expr) +
                          ") with units >= 1, got shape " + shape_string(shape_of(in.recurrent_kernel)));
  }
  p.units = in.recurrent_kernel.shape(0);
  const index_t H = p.units;
  const std::string gates = cell.gate_expr;
  expect_shape(in.recurrent_kernel, "recurrent_kernel", {H, cell.gates * H}, "(units, " + gates + ")");
  in.kernel = as_float_array<T>(kernel, "kernel", ref);
  expect_shape(in.kernel, "kernel", {p.features, cell.gates * H}, "(features, " + gates + ")");
  in.bias = as_float_array<T>(bias, "bias", ref);
  if (cell.split_bias) {
    expect_shape(in.bias, "bias", {2, cell.gates * H}, "(2, " + gates + ")");
  } else {
    expect_shape(in.bias, "bias", {cell.gates * H}, "(" + gates + ",)");
  }
  in.h0 = checked_optional<T>(h0, "h0", {p.batch, H}, "(batch, units)", ref);
  in.c0 = checked_optional<T>(c0, "c0", {p.batch, H}, "(batch, units)", ref);
  in.h0_data = data_or_null<T>(in.h0);
  in.c0_data = data_or_null<T>(in.c0);
  in.recurrent_mask = checked_optional<T>(recurrent_mask, "recurrent_mask", {p.batch, H}, "(batch, units)", ref);
  in.mask_data = data_or_null<T>(in.recurrent_mask);
  in.lengths = checked_lengths(lengths, p.batch, p.timesteps);
  p.pre_padding = checked_padding(padding);
  in.padding = padding;
  if (!in.lengths.is_none()) p.lengths = py::cast<py::array_t<std::int64_t>>(in.lengths).data();
  p.threads = current_threads();
}

template <class T>
ForwardInputs<T> check_dense(const CellSpec& cell, const py::array& x, const py::handle& kernel,
                             const py::handle& recurrent_kernel, const py::handle& bias, const py::handle& h0,
                             const py::handle& c0, const py::handle& recurrent_mask, const py::handle& lengths,
                             const std::string& padding) {
  ForwardInputs<T> in;
  in.x = as_float_array<T>(x, "x");
  if (in.x.ndim() != 3) {
    throw py::value_error("x: expected a 3-D array (batch, timesteps, features), got shape " +
                          shape_string(shape_of(in.x)));
  }
  Problem& p = in.problem;
  p.batch = in.x.shape(0);
  p.timesteps = in.x.shape(1);
  p.features = in.x.shape(2);
  check_not_empty(p, shape_of(in.x), "x");
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
  Problem& p = in.problem;
  p.batch = in.ids.shape(0);
  p.timesteps = in.ids.shape(1);
  p.features = in.embeddings.shape(1);
  check_not_empty(p, {p.batch, p.timesteps, p.features}, "x (token ids) with embeddings");
  check_weights_and_states(cell, in, kernel, recurrent_kernel, bias, h0, c0, recurrent_mask, lengths, padding);
  return in;
}

template <class T>
py::tuple forward_impl(const CellSpec& cell, const ForwardInputs<T>& in, bool save_for_backward,
                       bool return_sequences) {
  const Problem& p = in.problem;
  const index_t H = p.units, V = in.vocabulary();
  // Everything this call allocates, checked before the first allocation: outputs (H per row), and for
  // the backward the inputs (F) and at most 8H of records per row (LSTM: 4H gates, states, cells, ...).
  const index_t output_rows = save_for_backward || return_sequences ? p.batch + p.batch * p.timesteps : p.batch;
  checked_size({output_rows, save_for_backward ? p.features + 9 * H : H}, sizeof(T),
               "the outputs" + std::string(save_for_backward ? " and the records for the backward" : ""));
  auto outputs = new_array<T>({return_sequences ? p.batch : 0, p.timesteps, H}, "outputs");
  auto h = new_array<T>({p.batch, H}, "h");
  auto c = new_array<T>({cell_id(cell) == CellId::lstm ? p.batch : 0, H}, "c");
  // Saved for the backward: copies of the weights (an in-place update of the caller's arrays after
  // this call cannot change the backward), then the step loop's records; all null for inference.
  const bool masked = in.mask_data != nullptr;
  const auto names = saved_names(cell, in.tokens, masked);
  std::vector<py::array_t<T>> saved;
  std::vector<T*> s(names.size(), nullptr);
  py::array_t<std::int32_t> ids_packed;
  if (save_for_backward) {
    const index_t rows = packed_rows(p);
    saved = {copy_of(in.kernel), copy_of(in.recurrent_kernel)};
    saved.push_back(in.tokens ? copy_of(in.embeddings) : new_array<T>({rows, p.features}, "x_packed"));
    for (std::size_t i = 3; i < names.size(); ++i) {
      saved.push_back(new_array<T>(saved_shape(cell, names[i], p, rows, V), names[i]));
    }
    for (std::size_t i = 0; i < saved.size(); ++i) s[i] = saved[i].mutable_data();
    if (in.tokens) ids_packed = new_array<std::int32_t>({rows}, "the packed ids");
  }
  std::int32_t* ids_out = save_for_backward && in.tokens ? ids_packed.mutable_data() : nullptr;
  const index_t table_columns = (cell.split_bias ? 3 : cell.gates) * H;
  const PooledScratch<T> table(in.tokens ? checked_size({V, table_columns}, sizeof(T), "the projection table") : 0);
  const T *xd = in.tokens ? nullptr : in.x.data(), *w = in.kernel.data(), *u = in.recurrent_kernel.data();
  const T *b = in.bias.data(), *e = in.tokens ? in.embeddings.data() : nullptr, *rm = in.mask_data;
  const std::int32_t* ids = in.tokens ? in.ids.data() : nullptr;
  T *out = return_sequences ? outputs.mutable_data() : nullptr, *hd = h.mutable_data(), *cd = c.mutable_data(), *tb = table.get();
  T* ms = save_for_backward && masked ? s.back() : nullptr;
  {
    py::gil_scoped_release release;
    const auto& k = kernels().get<T>();
    switch (cell_id(cell)) {
      case CellId::simple_rnn:
        if (in.tokens) {
          k.simple_rnn_forward_tokens(p, ids, V, e, w, u, b, in.h0_data, rm, out, hd, ids_out, s[3], ms, tb);
        } else {
          k.simple_rnn_forward(p, xd, w, u, b, in.h0_data, rm, out, hd, s[2], s[3], ms);
        }
        break;
      case CellId::lstm:
        if (in.tokens) {
          k.lstm_forward_tokens(p, ids, V, e, w, u, b, in.h0_data, in.c0_data, rm, out, hd, cd, ids_out, s[3], s[4],
                                s[5], s[6], ms, tb);
        } else {
          k.lstm_forward(p, xd, w, u, b, in.h0_data, in.c0_data, rm, out, hd, cd, s[2], s[3], s[4], s[5], s[6], ms);
        }
        break;
      case CellId::gru:
        if (in.tokens) {
          k.gru_forward_tokens(p, ids, V, e, w, u, b, in.h0_data, rm, out, hd, ids_out, s[3], s[4], ms, tb);
        } else {
          k.gru_forward(p, xd, w, u, b, in.h0_data, rm, out, hd, s[2], s[3], s[4], ms);
        }
        break;
    }
  }
  py::object state = py::none();
  if (save_for_backward) {
    py::list arrays;
    for (const auto& a : saved) arrays.append(a);
    py::object mask_copy = masked ? py::object(copy_of(py::cast<py::array_t<T>>(in.recurrent_mask))) : py::none();
    state = py::make_tuple(cell.name, p.batch, p.timesteps, p.features, H, in.lengths, in.padding, py::tuple(arrays),
                           in.tokens ? py::object(ids_packed) : py::object(py::none()), mask_copy);
  }
  const py::object sequences = return_sequences ? py::object(outputs) : py::object(py::none());
  if (cell_id(cell) == CellId::lstm) return py::make_tuple(sequences, h, c, state);
  return py::make_tuple(sequences, h, state);
}

// The saved state of a forward call, checked against what that call would have produced: a tampered
// one gives an exception, never an out-of-bounds access.
template <class T>
struct SavedState {
  Problem problem;
  py::object lengths;
  std::vector<py::array_t<T>> arrays;  // saved_names order
  py::array_t<std::int32_t> ids_packed;
  py::object recurrent_mask;  // None or py::array_t<T> (batch, units)
  bool tokens = false;
};

std::size_t saved_float_size(const py::tuple& saved) {
  try {
    return float_size_of(to_array(py::reinterpret_borrow<py::tuple>(saved[7])[0], "fwd"), "fwd");
  } catch (const py::error_already_set&) {
    throw py::type_error("fwd: expected the result of a forward call of rnnkit.kernels");
  } catch (const py::cast_error&) {
    throw py::type_error("fwd: expected the result of a forward call of rnnkit.kernels");
  }
}

template <class T>
SavedState<T> check_saved(const CellSpec& cell, const py::tuple& saved) {
  const std::string bad = std::string("fwd: not the saved state of a ") + cell.name + "_forward call";
  if (saved.size() != 10 || !py::isinstance<py::str>(saved[0]) || saved[0].cast<std::string>() != cell.name) {
    throw py::type_error(bad);
  }
  SavedState<T> s;
  Problem& p = s.problem;
  p.batch = saved[1].cast<index_t>();
  p.timesteps = saved[2].cast<index_t>();
  p.features = saved[3].cast<index_t>();
  p.units = saved[4].cast<index_t>();
  if (p.batch <= 0 || p.timesteps <= 0 || p.features <= 0 || p.units <= 0) throw py::value_error(bad);
  s.lengths = checked_lengths(saved[5], p.batch, p.timesteps);
  if (!s.lengths.is_none()) p.lengths = py::cast<py::array_t<std::int64_t>>(s.lengths).data();
  p.pre_padding = checked_padding(saved[6].cast<std::string>());
  p.threads = current_threads();
  s.tokens = !saved[8].is_none();
  s.recurrent_mask = checked_optional<T>(saved[9], "fwd.recurrent_mask", {p.batch, p.units}, "(batch, units)",
                                         "the forward call");
  const auto arrays = saved[7].cast<py::tuple>();
  const auto names = saved_names(cell, s.tokens, !s.recurrent_mask.is_none());
  if (arrays.size() != names.size()) throw py::value_error(bad);
  const index_t rows = packed_rows(p);
  index_t vocabulary = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto a = as_float_array<T>(arrays[i], "fwd." + names[i], "the forward call");
    if (names[i] == "embeddings") vocabulary = a.ndim() == 2 ? a.shape(0) : 0;
    expect_shape(a, "fwd." + names[i], saved_shape(cell, names[i], p, rows, vocabulary), "(from the forward call)");
    s.arrays.push_back(a);
  }
  if (s.tokens) {
    s.ids_packed = checked_ids<std::int32_t>(saved[8], vocabulary, "fwd.ids");
    expect_shape(s.ids_packed, "fwd.ids", {rows}, "(from the forward call)");
  }
  return s;
}

template <class T>
py::tuple backward_impl(const CellSpec& cell, const py::tuple& saved, const py::handle& d_outputs,
                        const py::handle& d_h, const py::handle& d_c) {
  const auto s = check_saved<T>(cell, saved);
  const Problem& p = s.problem;
  const index_t F = p.features, H = p.units, G = cell.gates * H;
  const index_t V = s.tokens ? s.arrays[2].shape(0) : 0;
  const bool lstm = cell_id(cell) == CellId::lstm;
  const char* ref = "the forward call";
  const auto d_out =
      checked_optional<T>(d_outputs, "d_outputs", {p.batch, p.timesteps, H}, "(batch, timesteps, units)", ref);
  const auto dh = checked_optional<T>(d_h, "d_h", {p.batch, H}, "(batch, units)", ref);
  const auto dc = checked_optional<T>(d_c, "d_c", {p.batch, H}, "(batch, units)", ref);
  const T *d_out_data = data_or_null<T>(d_out), *dh_data = data_or_null<T>(dh), *dc_data = data_or_null<T>(dc);
  std::vector<py::array_t<T>> grads{
      s.tokens ? new_array<T>({V, F}, "dembeddings") : new_array<T>({p.batch, p.timesteps, F}, "dx"),
      new_array<T>({F, G}, "dkernel"),
      new_array<T>({H, G}, "drecurrent_kernel"),
      cell.split_bias ? new_array<T>({2, G}, "dbias") : new_array<T>({G}, "dbias"),
      new_array<T>({p.batch, H}, "dh0"),
  };
  if (lstm) grads.push_back(new_array<T>({p.batch, H}, "dc0"));
  std::vector<T*> g;
  for (auto& a : grads) g.push_back(a.mutable_data());
  std::vector<const T*> a;
  for (const auto& arr : s.arrays) a.push_back(arr.data());
  const PooledScratch<T> ring(backward_ring_size(p.batch, p.timesteps, cell.ring_columns * H));
  const index_t table_columns = (cell.split_bias ? 3 : cell.gates) * H;
  const PooledScratch<T> d_table(s.tokens ? V * table_columns : 0);
  const std::int32_t* ids = s.tokens ? s.ids_packed.data() : nullptr;
  T *w = ring.get(), *dt = d_table.get();
  const T* rm = data_or_null<T>(s.recurrent_mask);
  const T* ms = rm ? a.back() : nullptr;
  {
    py::gil_scoped_release release;
    const auto& k = kernels().get<T>();
    // a: kernel, recurrent_kernel, x_packed or embeddings, then the cell's records
    switch (cell_id(cell)) {
      case CellId::simple_rnn:
        if (s.tokens) {
          k.simple_rnn_backward_tokens(p, ids, V, a[2], a[0], a[1], a[3], rm, ms, d_out_data, dh_data, g[0], g[1], g[2],
                                       g[3], g[4], w, dt);
        } else {
          k.simple_rnn_backward(p, a[0], a[1], a[2], a[3], rm, ms, d_out_data, dh_data, g[0], g[1], g[2], g[3], g[4],
                                w);
        }
        break;
      case CellId::lstm:
        if (s.tokens) {
          k.lstm_backward_tokens(p, ids, V, a[2], a[0], a[1], a[3], a[4], a[5], a[6], rm, ms, d_out_data, dh_data,
                                 dc_data, g[0], g[1], g[2], g[3], g[4], g[5], w, dt);
        } else {
          k.lstm_backward(p, a[0], a[1], a[2], a[3], a[4], a[5], a[6], rm, ms, d_out_data, dh_data, dc_data, g[0],
                          g[1], g[2], g[3], g[4], g[5], w);
        }
        break;
      case CellId::gru:
        if (s.tokens) {
          k.gru_backward_tokens(p, ids, V, a[2], a[0], a[1], a[3], a[4], rm, ms, d_out_data, dh_data, g[0], g[1], g[2],
                                g[3], g[4], w, dt);
        } else {
          k.gru_backward(p, a[0], a[1], a[2], a[3], a[4], rm, ms, d_out_data, dh_data, g[0], g[1], g[2], g[3], g[4], w);
        }
        break;
    }
  }
  py::tuple out(grads.size() + 1);
  out[0] = s.tokens ? py::object(py::none()) : py::object(grads[0]);  // dx
  out[1] = s.tokens ? py::object(grads[0]) : py::object(py::none());  // dembeddings
  for (std::size_t i = 1; i < grads.size(); ++i) out[i + 1] = grads[i];
  return out;
}

// Runs a function template for float or double, by the float type of the arrays (4 or 8 bytes).
#define RNNKIT_BY_FLOAT_TYPE(impl, size, ...) (size == 4 ? impl<float>(__VA_ARGS__) : impl<double>(__VA_ARGS__))

template <class T>
py::tuple forward_typed(const CellSpec& cell, const py::handle& x, const py::handle& embeddings,
                        const py::handle& kernel, const py::handle& recurrent_kernel, const py::handle& bias,
                        const py::handle& h0, const py::handle& c0, const py::handle& recurrent_mask,
                        const py::handle& lengths, const std::string& padding, bool save_for_backward,
                        bool return_sequences) {
  const auto in = embeddings.is_none()
                      ? check_dense<T>(cell, to_array(x, "x"), kernel, recurrent_kernel, bias, h0, c0, recurrent_mask,
                                       lengths, padding)
                      : check_tokens<T>(cell, x, to_array(embeddings, "embeddings"), kernel, recurrent_kernel, bias,
                                        h0, c0, recurrent_mask, lengths, padding);
  return forward_impl<T>(cell, in, save_for_backward, return_sequences);
}

py::tuple forward(const CellSpec& cell, const py::handle& x, const py::handle& kernel,
                  const py::handle& recurrent_kernel, const py::handle& bias, const py::handle& h0,
                  const py::handle& c0, const py::handle& lengths, const std::string& padding, bool save_for_backward,
                  const py::handle& embeddings, const py::handle& recurrent_mask, bool return_sequences) {
  if (cell_id(cell) != CellId::lstm && !c0.is_none()) {
    throw py::value_error(std::string("c0: only an LSTM has a cell state, ") + cell.name + " takes h0 alone");
  }
  // The float type comes from x, or from the embedding table when x holds token ids.
  const std::size_t size = embeddings.is_none() ? float_size_of(to_array(x, "x"), "x")
                                                : float_size_of(to_array(embeddings, "embeddings"), "embeddings");
  return RNNKIT_BY_FLOAT_TYPE(forward_typed, size, cell, x, embeddings, kernel, recurrent_kernel, bias, h0, c0,
                              recurrent_mask, lengths, padding, save_for_backward, return_sequences);
}

py::tuple backward(const CellSpec& cell, const py::tuple& saved, const py::handle& d_outputs, const py::handle& d_h,
                   const py::handle& d_c) {
  if (cell_id(cell) != CellId::lstm && !d_c.is_none()) {
    throw py::value_error(std::string("d_c: only an LSTM has a cell state, ") + cell.name + " takes d_h alone");
  }
  return RNNKIT_BY_FLOAT_TYPE(backward_impl, saved_float_size(saved), cell, saved, d_outputs, d_h, d_c);
}

}  // namespace

void bind_recurrent(py::module_& m) {
  for (const CellSpec* cell : {&kSimpleRnn, &kLstm, &kGru}) {
    const std::string name = cell->name;
    m.def(
        (name + "_forward").c_str(),
        [cell](const py::handle& x, const py::handle& kernel, const py::handle& recurrent_kernel,
               const py::handle& bias, const py::handle& h0, const py::handle& c0, const py::handle& lengths,
               const std::string& padding, bool save_for_backward, const py::handle& embeddings,
               const py::handle& recurrent_mask, bool return_sequences) {
          return forward(*cell, x, kernel, recurrent_kernel, bias, h0, c0, lengths, padding, save_for_backward,
                         embeddings, recurrent_mask, return_sequences);
        },
        py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0") = py::none(),
        py::arg("c0") = py::none(), py::arg("lengths") = py::none(), py::arg("padding") = "pre",
        py::arg("save_for_backward") = true, py::arg("embeddings") = py::none(),
        py::arg("recurrent_mask") = py::none(), py::arg("return_sequences") = true);
    m.def(
        (name + "_backward").c_str(),
        [cell](const py::tuple& saved, const py::handle& d_outputs, const py::handle& d_h, const py::handle& d_c) {
          return backward(*cell, saved, d_outputs, d_h, d_c);
        },
        py::arg("saved"), py::arg("d_outputs") = py::none(), py::arg("d_h") = py::none(), py::arg("d_c") = py::none());
  }
}

}  // namespace rnnkit
