// rnnkit._core: checks and converts the arguments, allocates the results as NumPy arrays, and runs a
// kernel with the GIL released. No arithmetic happens here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "buffer_pool.hpp"
#include "rnnkit/kernel_table.hpp"

namespace py = pybind11;

namespace rnnkit {
namespace {

std::atomic<int> g_threads{1};

// ---------------------------------------------------------------------------------------------------
// Messages

std::string shape_string(const std::vector<index_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::vector<index_t> shape_of(const py::array& a) { return std::vector<index_t>(a.shape(), a.shape() + a.ndim()); }

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

[[noreturn]] void memory_error(const std::string& message) {
  PyErr_SetString(PyExc_MemoryError, message.c_str());
  throw py::error_already_set();
}

// ---------------------------------------------------------------------------------------------------
// Arguments

py::array to_array(const py::handle& obj, const std::string& name) {
  py::array arr = py::array::ensure(obj);
  if (!arr) {
    throw py::type_error(name + ": expected an array, got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  return arr;
}

bool has_float_dtype(const py::array& a, std::size_t itemsize) {
  return a.dtype().kind() == 'f' && static_cast<std::size_t>(a.itemsize()) == itemsize;
}

// The float type of a call is x's; every other float argument must have it too.
std::size_t float_size_of(const py::array& x) {
  if (has_float_dtype(x, 4) || has_float_dtype(x, 8)) return static_cast<std::size_t>(x.itemsize());
  throw py::type_error("x: expected a float32 or float64 array, got dtype " + dtype_name(x));
}

const char* float_name(std::size_t size) { return size == 4 ? "float32" : "float64"; }

// A C-contiguous array of T: copied only when the input is strided, Fortran-ordered or byte-swapped.
template <class T>
py::array_t<T> as_float_array(const py::handle& obj, const std::string& name) {
  py::array arr = to_array(obj, name);
  if (!has_float_dtype(arr, sizeof(T))) {
    throw py::type_error(name + ": dtype " + dtype_name(arr) + " does not match x's " + float_name(sizeof(T)) +
                         "; rnnkit never converts between types silently, pass both as the same float type");
  }
  return py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(arr);
}

// None, or a checked array as as_float_array gives it.
template <class T>
py::object optional_float_array(const py::handle& obj, const std::string& name) {
  if (obj.is_none()) return py::none();
  return as_float_array<T>(obj, name);
}

void expect_shape(const py::array& a, const std::string& name, const std::vector<index_t>& expected,
                  const std::string& meaning) {
  const auto got = shape_of(a);
  if (got == expected) return;
  if (got.size() != expected.size()) {
    throw py::value_error(name + ": expected a " + std::to_string(expected.size()) + "-D array " + meaning + " = " +
                          shape_string(expected) + ", got a " + std::to_string(got.size()) + "-D array of shape " +
                          shape_string(got));
  }
  throw py::value_error(name + ": expected shape " + meaning + " = " + shape_string(expected) + ", got " +
                        shape_string(got));
}

// a * b * ..., or a MemoryError when the product does not fit in memory's address range.
index_t checked_size(std::initializer_list<index_t> factors, std::size_t itemsize, const std::string& what) {
  index_t n = 1;
  for (index_t f : factors) {
    if (__builtin_mul_overflow(n, f, &n)) memory_error("rnnkit: " + what + " would exceed the address space");
  }
  index_t bytes;
  if (__builtin_mul_overflow(n, static_cast<index_t>(itemsize), &bytes)) {
    memory_error("rnnkit: " + what + " would exceed the address space");
  }
  return n;
}

// Sequence lengths: null, or an int64 copy after checking 0 <= length <= timesteps.
py::object checked_lengths(const py::handle& obj, index_t batch, index_t timesteps) {
  if (obj.is_none()) return py::none();
  py::array arr = to_array(obj, "lengths");
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw py::type_error("lengths: expected an integer array, got dtype " + dtype_name(arr));
  }
  expect_shape(arr, "lengths", {batch}, "(batch,)");
  // uint64 goes through Python ints so that huge values are reported, not wrapped.
  py::array_t<std::int64_t> out(batch);
  auto src = py::array_t<double>::ensure(arr);  // exact for every length that can pass the check below
  const double* in = src.data();
  for (index_t i = 0; i < batch; ++i) {
    if (!(in[i] >= 0 && in[i] <= static_cast<double>(timesteps))) {
      throw py::value_error("lengths[" + std::to_string(i) + "] = " + std::string(py::str(arr[py::int_(i)])) +
                            " is outside [0, timesteps=" + std::to_string(timesteps) + "]");
    }
    out.mutable_data()[i] = static_cast<std::int64_t>(in[i]);
  }
  return std::move(out);
}

bool checked_padding(const std::string& padding) {
  if (padding == "pre") return true;
  if (padding == "post") return false;
  throw py::value_error("padding: expected 'pre' or 'post', got '" + padding + "'");
}

// ---------------------------------------------------------------------------------------------------
// Cells

struct CellSpec {
  const char* name;
  index_t gates;                 // G: kernel is (features, G*units)
  const char* gate_expr;         // how a message writes G*units
  bool split_bias;               // GRU: bias (2, 3*units)
  std::vector<const char*> saved;  // arrays kept for the backward, after kernel and recurrent_kernel
};

const CellSpec kSimpleRnn{"simple_rnn", 1, "units", false, {"x_packed", "states"}};
const CellSpec kLstm{"lstm", 4, "4*units", false, {"x_packed", "gates", "states", "cells", "tanh_cells"}};
const CellSpec kGru{"gru", 3, "3*units", true, {"x_packed", "gates", "states"}};

// Shape of a saved array (layout.hpp: N packed rows).
std::vector<index_t> saved_shape(const CellSpec& cell, const std::string& name, const Problem& p, index_t rows) {
  const index_t H = p.units;
  if (name == "kernel") return {p.features, cell.gates * H};
  if (name == "recurrent_kernel") return {H, cell.gates * H};
  if (name == "x_packed") return {rows, p.features};
  if (name == "gates") return {rows, 4 * H};
  if (name == "states" || name == "cells") return {p.batch + rows, H};
  return {rows, H};  // tanh_cells
}

index_t packed_rows(const Problem& p) {
  if (!p.lengths) return p.batch * p.timesteps;
  index_t rows = 0;
  for (index_t i = 0; i < p.batch; ++i) rows += p.lengths[i];
  return rows;
}

// An uninitialized NumPy array whose memory comes from (and goes back to) the buffer pool.
template <class T>
py::array_t<T> new_array(const std::vector<index_t>& shape, const std::string& what) {
  index_t n = 1;
  for (index_t s : shape) n = checked_size({n, s}, sizeof(T), what);
  struct Block {
    void* data;
    std::size_t bytes;
  };
  const std::size_t bytes = sizeof(T) * static_cast<std::size_t>(n);
  auto* block = new Block{buffer_pool::acquire(bytes), bytes};
  py::capsule owner;
  try {
    owner = py::capsule(block, [](void* p) {
      auto* b = static_cast<Block*>(p);
      buffer_pool::release(b->data, b->bytes);
      delete b;
    });
  } catch (...) {
    buffer_pool::release(block->data, block->bytes);
    delete block;
    throw;
  }
  return py::array_t<T>(shape, static_cast<T*>(block->data), owner);
}

// Scratch memory from the buffer pool for the duration of one call.
template <class T>
class PooledScratch {
 public:
  explicit PooledScratch(index_t n) : bytes_(sizeof(T) * static_cast<std::size_t>(n)) {
    data_ = static_cast<T*>(buffer_pool::acquire(bytes_));
  }
  ~PooledScratch() { buffer_pool::release(data_, bytes_); }
  PooledScratch(const PooledScratch&) = delete;
  PooledScratch& operator=(const PooledScratch&) = delete;
  T* get() const { return data_; }

 private:
  std::size_t bytes_;
  T* data_;
};

template <class T>
py::array_t<T> copy_of(const py::array_t<T>& a) {
  py::array_t<T> out(shape_of(a));
  std::memcpy(out.mutable_data(), a.data(), sizeof(T) * static_cast<std::size_t>(a.size()));
  return out;
}

template <class T>
const T* data_or_null(const py::object& a) {
  return a.is_none() ? nullptr : py::cast<py::array_t<T>>(a).data();
}

// None, or an array of T with the given shape.
template <class T>
py::object checked_optional(const py::handle& obj, const std::string& name, const std::vector<index_t>& shape,
                            const std::string& meaning) {
  py::object a = optional_float_array<T>(obj, name);
  if (!a.is_none()) expect_shape(py::cast<py::array>(a), name, shape, meaning);
  return a;
}

// The arguments of a forward call, checked.
template <class T>
struct ForwardInputs {
  Problem problem;
  py::array_t<T> x, kernel, recurrent_kernel, bias;
  py::object h0, c0;  // None or py::array_t<T>
  const T* h0_data = nullptr;
  const T* c0_data = nullptr;
  py::object lengths;  // int64 array or None
  std::string padding;
};

template <class T>
ForwardInputs<T> check_forward(const CellSpec& cell, const py::array& x_arr, const py::handle& kernel,
                               const py::handle& recurrent_kernel, const py::handle& bias, const py::handle& h0,
                               const py::handle& c0, const py::handle& lengths, const std::string& padding) {
  ForwardInputs<T> in;
  in.x = as_float_array<T>(x_arr, "x");
  if (in.x.ndim() != 3) {
    throw py::value_error("x: expected a 3-D array (batch, timesteps, features), got shape " +
                          shape_string(shape_of(in.x)));
  }
  Problem& p = in.problem;
  p.batch = in.x.shape(0);
  p.timesteps = in.x.shape(1);
  p.features = in.x.shape(2);
  if (p.batch == 0 || p.timesteps == 0 || p.features == 0) {
    throw py::value_error("x: expected at least one sequence of at least one timestep of at least one feature, "
                          "got shape " + shape_string(shape_of(in.x)));
  }
  in.recurrent_kernel = as_float_array<T>(recurrent_kernel, "recurrent_kernel");
  if (in.recurrent_kernel.ndim() != 2 || in.recurrent_kernel.shape(0) == 0) {
    throw py::value_error("recurrent_kernel: expected a 2-D array (units, " + std::string(cell.gate_expr) +
                          ") with units >= 1, got shape " + shape_string(shape_of(in.recurrent_kernel)));
  }
  p.units = in.recurrent_kernel.shape(0);
  const index_t H = p.units;
  const std::string gates = cell.gate_expr;
  expect_shape(in.recurrent_kernel, "recurrent_kernel", {H, cell.gates * H}, "(units, " + gates + ")");
  in.kernel = as_float_array<T>(kernel, "kernel");
  expect_shape(in.kernel, "kernel", {p.features, cell.gates * H}, "(features, " + gates + ")");
  in.bias = as_float_array<T>(bias, "bias");
  if (cell.split_bias) {
    expect_shape(in.bias, "bias", {2, cell.gates * H}, "(2, " + gates + ")");
  } else {
    expect_shape(in.bias, "bias", {cell.gates * H}, "(" + gates + ",)");
  }
  in.h0 = checked_optional<T>(h0, "h0", {p.batch, H}, "(batch, units)");
  in.c0 = checked_optional<T>(c0, "c0", {p.batch, H}, "(batch, units)");
  in.h0_data = data_or_null<T>(in.h0);
  in.c0_data = data_or_null<T>(in.c0);
  in.lengths = checked_lengths(lengths, p.batch, p.timesteps);
  p.pre_padding = checked_padding(padding);
  in.padding = padding;
  if (!in.lengths.is_none()) p.lengths = py::cast<py::array_t<std::int64_t>>(in.lengths).data();
  p.threads = g_threads.load();
  checked_size({p.batch + p.batch * p.timesteps, std::max(p.features, 4 * H)}, sizeof(T), "the saved states");
  return in;
}

// Allocates the saved arrays of a forward call; kernel and recurrent_kernel are copies, so that a
// later in-place update of the caller's weights cannot change the backward.
template <class T>
std::vector<py::array_t<T>> new_saved(const CellSpec& cell, const ForwardInputs<T>& in) {
  const index_t rows = packed_rows(in.problem);
  std::vector<py::array_t<T>> saved{copy_of(in.kernel), copy_of(in.recurrent_kernel)};
  for (const char* name : cell.saved) saved.push_back(new_array<T>(saved_shape(cell, name, in.problem, rows), name));
  return saved;
}

py::tuple saved_tuple(const CellSpec& cell, const Problem& p, const py::object& lengths, const std::string& padding,
                      const py::list& arrays) {
  return py::make_tuple(cell.name, p.batch, p.timesteps, p.features, p.units, lengths, padding, py::tuple(arrays));
}

template <class T>
py::list as_list(const std::vector<py::array_t<T>>& arrays) {
  py::list out;
  for (const auto& a : arrays) out.append(a);
  return out;
}

// The saved state of a forward call, checked against what that call would have produced.
template <class T>
struct SavedState {
  Problem problem;
  py::object lengths;
  std::vector<py::array_t<T>> arrays;  // kernel, recurrent_kernel, then cell.saved
};

std::size_t saved_float_size(const py::handle& saved) {
  try {
    auto t = py::reinterpret_borrow<py::tuple>(saved);
    return float_size_of(to_array(py::reinterpret_borrow<py::tuple>(t[7])[0], "fwd"));
  } catch (const py::error_already_set&) {
    throw py::type_error("fwd: expected the result of a forward call of rnnkit.kernels");
  } catch (const py::cast_error&) {
    throw py::type_error("fwd: expected the result of a forward call of rnnkit.kernels");
  }
}

template <class T>
SavedState<T> check_saved(const CellSpec& cell, const py::tuple& saved) {
  const std::string bad = std::string("fwd: not the saved state of a ") + cell.name + "_forward call";
  if (saved.size() != 8 || !py::isinstance<py::str>(saved[0]) || saved[0].cast<std::string>() != cell.name) {
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
  p.threads = g_threads.load();
  const auto arrays = saved[7].cast<py::tuple>();
  std::vector<std::string> names{"kernel", "recurrent_kernel"};
  names.insert(names.end(), cell.saved.begin(), cell.saved.end());
  if (arrays.size() != names.size()) throw py::value_error(bad);
  const index_t rows = packed_rows(p);
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto a = as_float_array<T>(arrays[i], "fwd." + names[i]);
    expect_shape(a, "fwd." + names[i], saved_shape(cell, names[i], p, rows), "(from the forward call)");
    s.arrays.push_back(a);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------
// Entry points: one forward and one backward for all cells; only the kernel call differs.

enum class CellId { simple_rnn, lstm, gru };

CellId cell_id(const CellSpec& cell) {
  return &cell == &kLstm ? CellId::lstm : &cell == &kGru ? CellId::gru : CellId::simple_rnn;
}

template <class T>
T* data_of(py::array_t<T>& a) {
  return a.mutable_data();
}

template <class T>
py::tuple forward_impl(const CellSpec& cell, const py::array& x, const py::handle& kernel,
                       const py::handle& recurrent_kernel, const py::handle& bias, const py::handle& h0,
                       const py::handle& c0, const py::handle& lengths, const std::string& padding,
                       bool save_for_backward) {
  const auto in = check_forward<T>(cell, x, kernel, recurrent_kernel, bias, h0, c0, lengths, padding);
  const Problem& p = in.problem;
  auto outputs = new_array<T>({p.batch, p.timesteps, p.units}, "outputs");
  auto h = new_array<T>({p.batch, p.units}, "h");
  auto c = new_array<T>({cell_id(cell) == CellId::lstm ? p.batch : 0, p.units}, "c");
  std::vector<py::array_t<T>> saved;
  std::vector<T*> s(2 + cell.saved.size(), nullptr);  // all null: an inference run keeps nothing
  if (save_for_backward) {
    saved = new_saved(cell, in);
    for (std::size_t i = 0; i < saved.size(); ++i) s[i] = data_of(saved[i]);
  }
  const T *xd = in.x.data(), *w = in.kernel.data(), *u = in.recurrent_kernel.data(), *b = in.bias.data();
  T *out = data_of(outputs), *hd = data_of(h), *cd = data_of(c);
  {
    py::gil_scoped_release release;
    const auto& k = kernels().get<T>();
    switch (cell_id(cell)) {
      case CellId::simple_rnn:
        k.simple_rnn_forward(p, xd, w, u, b, in.h0_data, out, hd, s[2], s[3]);
        break;
      case CellId::lstm:
        k.lstm_forward(p, xd, w, u, b, in.h0_data, in.c0_data, out, hd, cd, s[2], s[3], s[4], s[5], s[6]);
        break;
      case CellId::gru:
        k.gru_forward(p, xd, w, u, b, in.h0_data, out, hd, s[2], s[3], s[4]);
        break;
    }
  }
  py::object state = py::none();
  if (save_for_backward) state = saved_tuple(cell, p, in.lengths, in.padding, as_list(saved));
  if (cell_id(cell) == CellId::lstm) return py::make_tuple(outputs, h, c, state);
  return py::make_tuple(outputs, h, state);
}

template <class T>
py::tuple backward_impl(const CellSpec& cell, const py::tuple& saved, const py::handle& d_outputs,
                        const py::handle& d_h, const py::handle& d_c) {
  const auto s = check_saved<T>(cell, saved);
  const Problem& p = s.problem;
  const index_t F = p.features, H = p.units, G = cell.gates * H;
  const bool lstm = cell_id(cell) == CellId::lstm;
  const auto d_out = checked_optional<T>(d_outputs, "d_outputs", {p.batch, p.timesteps, H}, "(batch, timesteps, units)");
  const auto dh = checked_optional<T>(d_h, "d_h", {p.batch, H}, "(batch, units)");
  const auto dc = checked_optional<T>(d_c, "d_c", {p.batch, H}, "(batch, units)");
  const T *d_out_data = data_or_null<T>(d_out), *dh_data = data_or_null<T>(dh), *dc_data = data_or_null<T>(dc);
  std::vector<py::array_t<T>> grads{
      new_array<T>({p.batch, p.timesteps, F}, "dx"),
      new_array<T>({F, G}, "dkernel"),
      new_array<T>({H, G}, "drecurrent_kernel"),
      cell.split_bias ? new_array<T>({2, G}, "dbias") : new_array<T>({G}, "dbias"),
      new_array<T>({p.batch, H}, "dh0"),
  };
  if (lstm) grads.push_back(new_array<T>({p.batch, H}, "dc0"));
  std::vector<T*> g;
  for (auto& a : grads) g.push_back(data_of(a));
  std::vector<const T*> a;
  for (const auto& arr : s.arrays) a.push_back(arr.data());
  const PooledScratch<T> workspace(
      backward_ring_size(p.batch, p.timesteps, cell_id(cell) == CellId::simple_rnn ? H : 4 * H));
  T* w = workspace.get();
  {
    py::gil_scoped_release release;
    const auto& k = kernels().get<T>();
    switch (cell_id(cell)) {
      case CellId::simple_rnn:
        k.simple_rnn_backward(p, a[0], a[1], a[2], a[3], d_out_data, dh_data, g[0], g[1], g[2], g[3], g[4], w);
        break;
      case CellId::lstm:
        k.lstm_backward(p, a[0], a[1], a[2], a[3], a[4], a[5], a[6], d_out_data, dh_data, dc_data, g[0], g[1], g[2],
                        g[3], g[4], g[5], w);
        break;
      case CellId::gru:
        k.gru_backward(p, a[0], a[1], a[2], a[3], a[4], d_out_data, dh_data, g[0], g[1], g[2], g[3], g[4], w);
        break;
    }
  }
  py::tuple out(grads.size());
  for (std::size_t i = 0; i < grads.size(); ++i) out[i] = grads[i];
  return out;
}

// Runs a function template for float or double, by the float type of the arrays (4 or 8 bytes).
#define RNNKIT_BY_FLOAT_TYPE(impl, size, ...) (size == 4 ? impl<float>(__VA_ARGS__) : impl<double>(__VA_ARGS__))

py::tuple forward(const CellSpec& cell, const py::handle& x, const py::handle& kernel,
                  const py::handle& recurrent_kernel, const py::handle& bias, const py::handle& h0,
                  const py::handle& c0, const py::handle& lengths, const std::string& padding,
                  bool save_for_backward) {
  const py::array xa = to_array(x, "x");
  return RNNKIT_BY_FLOAT_TYPE(forward_impl, float_size_of(xa), cell, xa, kernel, recurrent_kernel, bias, h0, c0,
                              lengths, padding, save_for_backward);
}

py::tuple backward(const CellSpec& cell, const py::tuple& saved, const py::handle& d_outputs, const py::handle& d_h,
                   const py::handle& d_c) {
  return RNNKIT_BY_FLOAT_TYPE(backward_impl, saved_float_size(saved), cell, saved, d_outputs, d_h, d_c);
}

// ---------------------------------------------------------------------------------------------------
// Embedding

// Token ids as a C-contiguous int64 array, each checked to lie in [0, rows).
py::array_t<std::int64_t> checked_ids(const py::handle& obj, index_t rows) {
  py::array arr = to_array(obj, "ids");
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw py::type_error("ids: expected integer token ids, got dtype " + dtype_name(arr) +
                         " (convert with .astype('int32') if the values are ids)");
  }
  auto ids = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(arr);
  const std::int64_t* data = ids.data();
  for (index_t n = 0; n < ids.size(); ++n) {
    if (data[n] >= 0 && data[n] < rows) continue;
    std::string position;
    for (index_t d = ids.ndim() - 1, rest = n; d >= 0; --d) {
      position = std::to_string(rest % ids.shape(d)) + (position.empty() ? "" : ", ") + position;
      rest /= ids.shape(d);
    }
    throw py::index_error("token id " + py::str(arr.attr("flat")[py::int_(n)]).cast<std::string>() +
                          " at position (" + position + ") is outside [0, " + std::to_string(rows) + ")");
  }
  return ids;
}

template <class T>
py::array embedding_forward_impl(const py::handle& ids_obj, const py::array& table_arr) {
  auto table = as_float_array<T>(table_arr, "table");
  if (table.ndim() != 2) throw py::value_error("table: expected a 2-D array (rows, width), got shape " + shape_string(shape_of(table)));
  const index_t rows = table.shape(0), width = table.shape(1);
  const auto ids = checked_ids(ids_obj, rows);
  auto shape = shape_of(ids);
  shape.push_back(width);
  auto out = new_array<T>(shape, "the embedding output");
  const std::int64_t* id = ids.data();
  const T* t = table.data();
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    kernels().get<T>().embedding_forward(id, ids.size(), t, width, o);
  }
  return std::move(out);
}

template <class T>
py::array embedding_backward_impl(const py::handle& ids_obj, const py::array& d_out_arr, index_t rows) {
  if (rows < 1) throw py::value_error("rows: expected a table of at least one row, got " + std::to_string(rows));
  const auto ids = checked_ids(ids_obj, rows);
  auto d_out = as_float_array<T>(d_out_arr, "d_outputs");
  if (d_out.ndim() != ids.ndim() + 1) {
    throw py::value_error("d_outputs: expected ids' shape plus a width, got shape " + shape_string(shape_of(d_out)));
  }
  const index_t width = d_out.shape(ids.ndim());
  auto expected = shape_of(ids);
  expected.push_back(width);
  expect_shape(d_out, "d_outputs", expected, "(ids' shape, width)");
  auto d_table = new_array<T>({rows, width}, "the embedding gradient");
  const std::int64_t* id = ids.data();
  const T* d = d_out.data();
  T* g = d_table.mutable_data();
  {
    py::gil_scoped_release release;
    kernels().get<T>().embedding_backward(id, ids.size(), d, rows, width, g);
  }
  return std::move(d_table);
}

py::dict build_info() {
  py::dict info;
  info["version"] = RNNKIT_VERSION;
  info["compiler"] = std::string(RNNKIT_COMPILER_ID) + " " + __VERSION__;
  info["flags"] = RNNKIT_CXX_FLAGS;
#if defined(RNNKIT_NATIVE_BUILD)
  info["build"] = "native";
#else
  info["build"] = "portable";
#endif
  info["simd"] = kernels().isa;
  py::list compiled;
  for (const auto& isa : compiled_isas()) {
    if (isa.supported) compiled.append(isa.name);
  }
  info["simd_available"] = compiled;
  info["float_types"] = py::make_tuple("float32", "float64");
  info["threads"] = g_threads.load();
  return info;
}

}  // namespace
}  // namespace rnnkit

PYBIND11_MODULE(_core, m) {
  using namespace rnnkit;
  m.doc() = "rnnkit's C++ kernels. Use rnnkit.kernels, which wraps these with result objects.";
  kernels();  // a bad RNNKIT_ISA fails the import, not the first call

  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: expected a thread count >= 1, got " + std::to_string(n));
    g_threads.store(n);
  });
  m.def("get_num_threads", [] { return g_threads.load(); });
  m.def("build_info", &build_info);

  m.def(
      "simple_rnn_forward",
      [](const py::handle& x, const py::handle& kernel, const py::handle& recurrent_kernel, const py::handle& bias,
         const py::handle& h0, const py::handle& lengths, const std::string& padding, bool save_for_backward) {
        return forward(kSimpleRnn, x, kernel, recurrent_kernel, bias, h0, py::none(), lengths, padding,
                       save_for_backward);
      },
      py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0") = py::none(),
      py::arg("lengths") = py::none(), py::arg("padding") = "pre", py::arg("save_for_backward") = true);
  m.def(
      "lstm_forward",
      [](const py::handle& x, const py::handle& kernel, const py::handle& recurrent_kernel, const py::handle& bias,
         const py::handle& h0, const py::handle& c0, const py::handle& lengths, const std::string& padding,
         bool save_for_backward) {
        return forward(kLstm, x, kernel, recurrent_kernel, bias, h0, c0, lengths, padding, save_for_backward);
      },
      py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0") = py::none(),
      py::arg("c0") = py::none(), py::arg("lengths") = py::none(), py::arg("padding") = "pre",
      py::arg("save_for_backward") = true);
  m.def(
      "gru_forward",
      [](const py::handle& x, const py::handle& kernel, const py::handle& recurrent_kernel, const py::handle& bias,
         const py::handle& h0, const py::handle& lengths, const std::string& padding, bool save_for_backward) {
        return forward(kGru, x, kernel, recurrent_kernel, bias, h0, py::none(), lengths, padding, save_for_backward);
      },
      py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0") = py::none(),
      py::arg("lengths") = py::none(), py::arg("padding") = "pre", py::arg("save_for_backward") = true);
  m.def(
      "check_token_ids", [](const py::handle& ids, index_t rows) { checked_ids(ids, rows); }, py::arg("ids"),
      py::arg("rows"), "IndexError naming the first id outside [0, rows) and its position; TypeError unless integers");
  m.def(
      "embedding_forward",
      [](const py::handle& ids, const py::handle& table) {
        const py::array t = to_array(table, "table");
        if (!has_float_dtype(t, 4) && !has_float_dtype(t, 8)) {
          throw py::type_error("table: expected a float32 or float64 array, got dtype " + dtype_name(t));
        }
        return RNNKIT_BY_FLOAT_TYPE(embedding_forward_impl, static_cast<std::size_t>(t.itemsize()), ids, t);
      },
      py::arg("ids"), py::arg("table"), "table[ids], with every id checked to lie in [0, len(table))");
  m.def(
      "embedding_backward",
      [](const py::handle& ids, const py::handle& d_outputs, index_t rows) {
        const py::array d = to_array(d_outputs, "d_outputs");
        if (!has_float_dtype(d, 4) && !has_float_dtype(d, 8)) {
          throw py::type_error("d_outputs: expected a float32 or float64 array, got dtype " + dtype_name(d));
        }
        return RNNKIT_BY_FLOAT_TYPE(embedding_backward_impl, static_cast<std::size_t>(d.itemsize()), ids, d, rows);
      },
      py::arg("ids"), py::arg("d_outputs"), py::arg("rows"),
      "Gradient of the table: d_outputs summed into the rows their ids name");
  m.def(
      "simple_rnn_backward",
      [](const py::tuple& saved, const py::handle& d_outputs, const py::handle& d_h) {
        return backward(kSimpleRnn, saved, d_outputs, d_h, py::none());
      },
      py::arg("saved"), py::arg("d_outputs") = py::none(), py::arg("d_h") = py::none());
  m.def(
      "lstm_backward",
      [](const py::tuple& saved, const py::handle& d_outputs, const py::handle& d_h, const py::handle& d_c) {
        return backward(kLstm, saved, d_outputs, d_h, d_c);
      },
      py::arg("saved"), py::arg("d_outputs") = py::none(), py::arg("d_h") = py::none(), py::arg("d_c") = py::none());
  m.def(
      "gru_backward",
      [](const py::tuple& saved, const py::handle& d_outputs, const py::handle& d_h) {
        return backward(kGru, saved, d_outputs, d_h, py::none());
      },
      py::arg("saved"), py::arg("d_outputs") = py::none(), py::arg("d_h") = py::none());
}
