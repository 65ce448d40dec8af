// rnnkit._core's recurrent entry points: one forward and one backward for all three cells, for dense
// inputs x (B,T,F) or token ids into an embedding table. They check and convert the arguments
// (recurrent_arguments.hpp), allocate the results, and run the SIMD build's entry point with the GIL
// released; the forward's records travel to the backward in a ForwardRecord.
#include <string>
#include <type_traits>
#include <vector>

#include "python/forward_record.hpp"
#include "python/recurrent_arguments.hpp"
#include "runtime/dispatch.hpp"

namespace rnnkit {
namespace {

// 'full' (the float type's own products) or 'bfloat16' (recurrent_call.hpp's Precision).
Precision checked_precision(const std::string& name) {
  if (name == "full") return Precision::full;
  if (name == "bfloat16") return Precision::bfloat16;
  throw py::value_error("precision: expected 'full' or 'bfloat16', got '" + name + "'");
}

// Keras' name of a cell activation: 'tanh', and for a SimpleRNN or GRU also 'relu' or 'linear'.
Activation checked_activation(const CellSpec& cell, const std::string& name) {
  if (name == "tanh") return Activation::tanh;
  if (cell.cell != Cell::lstm && name == "relu") return Activation::relu;
  if (cell.cell != Cell::lstm && name == "linear") return Activation::linear;
  throw py::value_error("activation: " + std::string(cell.name) + " takes " +
                        (cell.cell == Cell::lstm ? "'tanh'" : "'tanh', 'relu' or 'linear'") + ", got '" + name + "'");
}

template <class T>
py::tuple forward_impl(const CellSpec& cell, const ForwardInputs<T>& in, Activation activation,
                       bool save_for_backward, bool return_sequences) {
  const Problem& problem = in.problem;
  const index_t B = problem.batch, H = problem.units;
  // Everything this call allocates, checked before the first allocation: outputs (H per row), and for
  // the backward the inputs (F) and at most 8H of records per row (LSTM: 4H gates, states, cells, ...).
  const index_t output_rows = save_for_backward || return_sequences ? B + B * problem.timesteps : B;
  checked_size({output_rows, save_for_backward ? problem.features + 9 * H : H}, sizeof(T),
               "the outputs" + std::string(save_for_backward ? " and the records for the backward" : ""));
  auto outputs = problem.packed ? new_array<T>({return_sequences ? in.x.shape(0) : 0, H}, "outputs")
                                : new_array<T>({return_sequences ? B : 0, problem.timesteps, H}, "outputs");
  auto h = new_array<T>({B, H}, "h");
  auto c = new_array<T>({cell.cell == Cell::lstm ? B : 0, H}, "c");

  ForwardCall<T> call;
  call.problem = problem;
  call.activation = activation;
  if (in.tokens) {
    call.input.ids = in.ids.data();
    call.input.embeddings = in.embeddings.data();
    call.input.vocabulary = in.vocabulary();
  } else {
    call.input.x = in.x.data();
  }
  call.weights = {in.kernel.data(), in.recurrent_kernel.data(), in.bias.data()};
  call.h0 = in.h0_data;
  call.c0 = in.c0_data;
  call.recurrent_mask = in.mask_data;
  call.outputs = return_sequences ? outputs.mutable_data() : nullptr;
  call.h_last = h.mutable_data();
  call.c_last = c.mutable_data();
  std::unique_ptr<ForwardRecord> record;
  if (save_for_backward) {
    record = ForwardRecord::allocate<T>(cell.cell, activation, problem, in.lengths, in.kernel, in.recurrent_kernel,
                                        in.tokens ? &in.embeddings : nullptr, in.recurrent_mask);
    call.records = record->records<T>();
  }
  {
    py::gil_scoped_release release;
    start_kernel_call();
    simd_build().get<T>().run_forward(cell.cell, call);
  }
  const py::object sequences = return_sequences ? py::object(outputs) : py::object(py::none());
  const py::object saved = record ? py::cast(std::move(record)) : py::object(py::none());
  if (cell.cell == Cell::lstm) return py::make_tuple(sequences, h, c, saved);
  return py::make_tuple(sequences, h, saved);
}

ForwardRecord& checked_record(const CellSpec& cell, const py::handle& saved) {
  if (!py::isinstance<ForwardRecord>(saved)) {
    throw py::type_error("fwd: expected the result of a forward call of rnnkit.kernels");
  }
  auto& record = saved.cast<ForwardRecord&>();
  if (record.cell() != cell.cell) {
    throw py::type_error(std::string("fwd: not the saved state of a ") + cell.name + "_forward call");
  }
  return record;
}

template <class T>
py::tuple backward_impl(const CellSpec& cell, ForwardRecord& record, const py::handle& d_outputs,
                        const py::handle& d_h, const py::handle& d_c) {
  const Problem& problem = record.problem();
  const index_t B = problem.batch, F = problem.features, H = problem.units, G = gate_blocks(cell.cell) * H;
  const char* ref = "the forward call";
  const auto d_out = problem.packed ? checked_optional<T>(d_outputs, "d_outputs", {record.rows(), H}, "(rows, units)", ref)
                                    : checked_optional<T>(d_outputs, "d_outputs", {B, problem.timesteps, H},
                                                          "(batch, timesteps, units)", ref);
  const auto dh = checked_optional<T>(d_h, "d_h", {B, H}, "(batch, units)", ref);
  const auto dc = checked_optional<T>(d_c, "d_c", {B, H}, "(batch, units)", ref);
  const bool tokens = record.tokens();
  auto d_input = tokens           ? new_array<T>({record.vocabulary(), F}, "dembeddings")
                 : problem.packed ? new_array<T>({record.rows(), F}, "dx")
                                  : new_array<T>({B, problem.timesteps, F}, "dx");
  auto dkernel = new_array<T>({F, G}, "dkernel");
  auto drecurrent_kernel = new_array<T>({H, G}, "drecurrent_kernel");
  auto dbias = cell.split_bias ? new_array<T>({2, G}, "dbias") : new_array<T>({G}, "dbias");
  auto dh0 = new_array<T>({B, H}, "dh0");
  auto dc0 = new_array<T>({cell.cell == Cell::lstm ? B : 0, H}, "dc0");

  BackwardCall<T> call = record.backward_call<T>(current_threads());
  call.d_outputs = data_or_null<T>(d_out);
  call.d_h = data_or_null<T>(dh);
  call.d_c = data_or_null<T>(dc);
  (tokens ? call.grads.dembeddings : call.grads.dx) = d_input.mutable_data();
  call.grads.dkernel = dkernel.mutable_data();
  call.grads.drecurrent_kernel = drecurrent_kernel.mutable_data();
  call.grads.dbias = dbias.mutable_data();
  call.grads.dh0 = dh0.mutable_data();
  call.grads.dc0 = dc0.mutable_data();
  {
    py::gil_scoped_release release;
    start_kernel_call();
    simd_build().get<T>().run_backward(cell.cell, call);
  }
  const py::object none = py::none();
  const py::object dx = tokens ? none : py::object(d_input), dembeddings = tokens ? py::object(d_input) : none;
  if (cell.cell == Cell::lstm) return py::make_tuple(dx, dembeddings, dkernel, drecurrent_kernel, dbias, dh0, dc0);
  return py::make_tuple(dx, dembeddings, dkernel, drecurrent_kernel, dbias, dh0);
}

template <class T>
py::tuple forward_typed(const CellSpec& cell, const py::handle& x, const py::handle& embeddings,
                        const py::handle& kernel, const py::handle& recurrent_kernel, const py::handle& bias,
                        const py::handle& h0, const py::handle& c0, const py::handle& recurrent_mask,
                        const py::handle& lengths, const std::string& padding, bool packed, bool reverse,
                        Activation activation, Precision precision, bool save_for_backward, bool return_sequences) {
  if (precision == Precision::bfloat16 && !std::is_same_v<T, float>) {
    throw py::type_error("precision='bfloat16' rounds float32 products; the arrays are float64 (pass float32 "
                         "arrays, or precision='full')");
  }
  auto in = embeddings.is_none()
                      ? check_dense<T>(cell, to_array(x, "x"), kernel, recurrent_kernel, bias, h0, c0, recurrent_mask,
                                       lengths, padding, packed, reverse)
                      : check_tokens<T>(cell, x, to_array(embeddings, "embeddings"), kernel, recurrent_kernel, bias,
                                        h0, c0, recurrent_mask, lengths, padding);
  in.problem.precision = precision;
  return forward_impl<T>(cell, in, activation, save_for_backward, return_sequences);
}

py::tuple forward(const CellSpec& cell, const py::handle& x, const py::handle& kernel,
                  const py::handle& recurrent_kernel, const py::handle& bias, const py::handle& h0,
                  const py::handle& c0, const py::handle& lengths, const std::string& padding, bool save_for_backward,
                  const py::handle& embeddings, const py::handle& recurrent_mask, bool return_sequences,
                  const std::string& activation_name, bool packed, bool reverse, const std::string& precision_name) {
  const Activation activation = checked_activation(cell, activation_name);
  const Precision precision = checked_precision(precision_name);
  if (reverse && !packed) {
    throw py::value_error("reverse: runs packed sequences from their last step (packed=True); padded ones "
                          "run forward, got reverse=True with packed=False");
  }
  if (packed && !embeddings.is_none()) {
    throw py::value_error("packed: takes a dense x (rows, features); token ids with embeddings come padded "
                          "(batch, timesteps), got packed=True with embeddings");
  }
  if (cell.cell != Cell::lstm && !c0.is_none()) {
    throw py::value_error(std::string("c0: only an LSTM has a cell state, ") + cell.name + " takes h0 alone");
  }
  // The float type comes from x, or from the embedding table when x holds token ids.
  const std::size_t size = embeddings.is_none() ? float_size_of(to_array(x, "x"), "x")
                                                : float_size_of(to_array(embeddings, "embeddings"), "embeddings");
  return RNNKIT_BY_FLOAT_TYPE(forward_typed, size, cell, x, embeddings, kernel, recurrent_kernel, bias, h0, c0,
                              recurrent_mask, lengths, padding, packed, reverse, activation, precision,
                              save_for_backward, return_sequences);
}

py::tuple backward(const CellSpec& cell, const py::handle& saved, const py::handle& d_outputs, const py::handle& d_h,
                   const py::handle& d_c) {
  if (cell.cell != Cell::lstm && !d_c.is_none()) {
    throw py::value_error(std::string("d_c: only an LSTM has a cell state, ") + cell.name + " takes d_h alone");
  }
  ForwardRecord& record = checked_record(cell, saved);
  return RNNKIT_BY_FLOAT_TYPE(backward_impl, record.float_size(), cell, record, d_outputs, d_h, d_c);
}

}  // namespace

void bind_recurrent(py::module_& m) {
  py::class_<ForwardRecord>(m, "ForwardRecord",
                            "What a forward of rnnkit.kernels keeps for its backward; opaque and read-only.")
      .def("__repr__", &ForwardRecord::describe);
  for (const CellSpec& spec : kCellSpecs) {
    const CellSpec* cell = &spec;
    const std::string name = cell->name;
    m.def(
        (name + "_forward").c_str(),
        [cell](const py::handle& x, const py::handle& kernel, const py::handle& recurrent_kernel,
               const py::handle& bias, const py::handle& h0, const py::handle& c0, const py::handle& lengths,
               const std::string& padding, bool save_for_backward, const py::handle& embeddings,
               const py::handle& recurrent_mask, bool return_sequences, const std::string& activation, bool packed,
               bool reverse, const std::string& precision) {
          return forward(*cell, x, kernel, recurrent_kernel, bias, h0, c0, lengths, padding, save_for_backward,
                         embeddings, recurrent_mask, return_sequences, activation, packed, reverse, precision);
        },
        py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0") = py::none(),
        py::arg("c0") = py::none(), py::arg("lengths") = py::none(), py::arg("padding") = "pre",
        py::arg("save_for_backward") = true, py::arg("embeddings") = py::none(),
        py::arg("recurrent_mask") = py::none(), py::arg("return_sequences") = true, py::arg("activation") = "tanh",
        py::arg("packed") = false, py::arg("reverse") = false, py::arg("precision") = "full");
    m.def(
        (name + "_backward").c_str(),
        [cell](const py::handle& saved, const py::handle& d_outputs, const py::handle& d_h, const py::handle& d_c) {
          return backward(*cell, saved, d_outputs, d_h, d_c);
        },
        py::arg("saved"), py::arg("d_outputs") = py::none(), py::arg("d_h") = py::none(), py::arg("d_c") = py::none());
  }
}

}  // namespace rnnkit
