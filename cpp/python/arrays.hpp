// The binding layer's tools: checking arguments (with messages that name the argument, the expected
// shape or type, and what came), and NumPy arrays whose memory comes from the buffer pool.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include "runtime/buffer_pool.hpp"
#include "simd/recurrent_call.hpp"

namespace rnnkit {
namespace py = pybind11;

// --- messages --------------------------------------------------------------------------------------

inline std::string shape_string(const std::vector<index_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::vector<index_t> shape_of(const py::array& a) {
  return std::vector<index_t>(a.shape(), a.shape() + a.ndim());
}

inline std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

[[noreturn]] inline void memory_error(const std::string& message) {
  PyErr_SetString(PyExc_MemoryError, message.c_str());
  throw py::error_already_set();
}

// --- sizes ----------------------------------------------------------------------------------------

// This machine's physical memory in bytes (0 when unknown): a request for more is refused up front,
// as an allocation that large would either fail or, with overcommit, end in the out-of-memory killer.
inline std::uint64_t physical_memory_bytes() {
  static const std::uint64_t bytes = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    return pages > 0 && page_size > 0 ? std::uint64_t(pages) * std::uint64_t(page_size) : std::uint64_t(0);
  }();
  return bytes;
}

// MemoryError unless `bytes` (already overflow-checked) fits in this machine's memory.
inline void check_fits_in_memory(index_t bytes, const std::string& what) {
  const std::uint64_t limit = physical_memory_bytes();
  if (limit != 0 && static_cast<std::uint64_t>(bytes) > limit) {
    memory_error("rnnkit: " + what + " would need " + std::to_string(bytes >> 20) + " MiB, more than this machine's " +
                 std::to_string(limit >> 20) + " MiB of memory");
  }
}

// a * b * ... elements of itemsize bytes each: the count, or a MemoryError when the product overflows
// or the bytes exceed the machine's memory. Checked before anything is allocated.
inline index_t checked_size(std::initializer_list<index_t> factors, std::size_t itemsize, const std::string& what) {
  index_t n = 1;
  for (index_t f : factors) {
    if (f < 0 || __builtin_mul_overflow(n, f, &n)) memory_error("rnnkit: " + what + " would exceed the address space");
  }
  index_t bytes;
  if (__builtin_mul_overflow(n, static_cast<index_t>(itemsize), &bytes)) {
    memory_error("rnnkit: " + what + " would exceed the address space");
  }
  check_fits_in_memory(bytes, what);
  return n;
}

// The number of elements of an array of this shape, checked as checked_size checks.
inline index_t checked_count(const std::vector<index_t>& shape, std::size_t itemsize, const std::string& what) {
  index_t n = 1;
  for (index_t s : shape) n = checked_size({n, s}, itemsize, what);
  return n;
}

// arr as a C-contiguous array of T. A strided or broadcast view is copied, after checking that the
// copy fits in memory: a broadcast view can be far larger than the memory behind it.
template <class T>
py::array_t<T> contiguous(const py::array& arr, const std::string& name) {
  const bool copies = !(arr.flags() & py::array::c_style) || !py::isinstance<py::array_t<T>>(arr);
  if (copies) checked_count(shape_of(arr), sizeof(T), "a copy of " + name);
  return py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(arr);
}

// --- arguments -------------------------------------------------------------------------------------

inline py::array to_array(const py::handle& obj, const std::string& name) {
  py::array arr = py::array::ensure(obj);
  if (!arr) {
    throw py::type_error(name + ": expected an array, got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  return arr;
}

inline bool has_float_dtype(const py::array& a, std::size_t itemsize) {
  return a.dtype().kind() == 'f' && static_cast<std::size_t>(a.itemsize()) == itemsize;
}

// The float type (4 or 8 bytes) of the array that sets a call's type; anything else is a TypeError.
inline std::size_t float_size_of(const py::array& a, const std::string& name) {
  if (has_float_dtype(a, 4) || has_float_dtype(a, 8)) return static_cast<std::size_t>(a.itemsize());
  throw py::type_error(name + ": expected a float32 or float64 array, got dtype " + dtype_name(a));
}

inline const char* float_name(std::size_t size) { return size == 4 ? "float32" : "float64"; }

// A C-contiguous array of T: copied only when the input is strided, Fortran-ordered or byte-swapped.
// `reference` names the argument whose float type the call follows.
template <class T>
py::array_t<T> as_float_array(const py::handle& obj, const std::string& name, const std::string& reference = "x") {
  py::array arr = to_array(obj, name);
  if (!has_float_dtype(arr, sizeof(T))) {
    throw py::type_error(name + ": dtype " + dtype_name(arr) + " does not match " + reference + "'s " +
                         float_name(sizeof(T)) +
                         "; rnnkit never converts between types silently, pass both as the same float type");
  }
  return contiguous<T>(arr, name);
}

inline void expect_shape(const py::array& a, const std::string& name, const std::vector<index_t>& expected,
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

// None, or an array of T with the given shape.
template <class T>
py::object checked_optional(const py::handle& obj, const std::string& name, const std::vector<index_t>& shape,
                            const std::string& meaning, const std::string& reference = "x") {
  if (obj.is_none()) return py::none();
  py::array_t<T> a = as_float_array<T>(obj, name, reference);
  expect_shape(a, name, shape, meaning);
  return std::move(a);
}

template <class T>
const T* data_or_null(const py::object& a) {
  return a.is_none() ? nullptr : py::cast<py::array_t<T>>(a).data();
}

// Sequence lengths: None, or an int64 copy after checking 0 <= length <= bound (timesteps).
inline py::object checked_lengths(const py::handle& obj, index_t batch, index_t bound,
                                  const char* bound_name = "timesteps") {
  if (obj.is_none()) return py::none();
  py::array arr = to_array(obj, "lengths");
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw py::type_error("lengths: expected an integer array, got dtype " + dtype_name(arr));
  }
  expect_shape(arr, "lengths", {batch}, "(batch,)");
  py::array_t<std::int64_t> out(batch);
  auto as_double = py::array_t<double>::ensure(arr);  // exact for every length that can pass the check below
  const double* in = as_double.data();
  for (index_t i = 0; i < batch; ++i) {
    if (!(in[i] >= 0 && in[i] <= static_cast<double>(bound))) {
      throw py::value_error("lengths[" + std::to_string(i) + "] = " + std::string(py::str(arr[py::int_(i)])) +
                            " is outside [0, " + bound_name + "=" + std::to_string(bound) + "]");
    }
    out.mutable_data()[i] = static_cast<std::int64_t>(in[i]);
  }
  return std::move(out);
}

// A packed x's lengths: a 1-D integer array of lengths >= 0 adding up to x's rows (the real steps of
// every sequence), as an int64 copy; sets batch and timesteps (the longest length).
inline py::array_t<std::int64_t> checked_packed_lengths(const py::handle& obj, index_t rows, index_t& batch,
                                                        index_t& timesteps) {
  if (obj.is_none()) {
    throw py::value_error("lengths: packed=True needs each sequence's length (batch,), got None");
  }
  const py::array arr = to_array(obj, "lengths");
  if (arr.ndim() != 1) {
    throw py::value_error("lengths: expected a 1-D array (batch,), got shape " + shape_string(shape_of(arr)));
  }
  batch = arr.shape(0);
  auto lengths = py::cast<py::array_t<std::int64_t>>(checked_lengths(arr, batch, rows, "the rows of x"));
  const std::int64_t* data = lengths.data();
  index_t total = 0;
  timesteps = 0;
  for (index_t i = 0; i < batch; ++i) {
    total += data[i];
    timesteps = std::max<index_t>(timesteps, data[i]);
  }
  if (total != rows) {
    throw py::value_error("lengths: a packed x (rows, features) holds sum(lengths) rows; the lengths add up to " +
                          std::to_string(total) + ", x has " + std::to_string(rows));
  }
  return lengths;
}

inline bool checked_padding(const std::string& padding) {
  if (padding == "pre") return true;
  if (padding == "post") return false;
  throw py::value_error("padding: expected 'pre' or 'post', got '" + padding + "'");
}

// Index of the first id outside [0, rows), or n when all are inside. A branch-free pass per chunk
// (which the compiler vectorizes) finds whether a chunk holds a bad id; only then is it searched.
template <class Src>
index_t first_id_outside(const Src* ids, index_t n, index_t rows) {
  constexpr index_t kChunk = 4096;
  const auto outside = [rows](Src id) {
    if constexpr (std::is_signed_v<Src>) {
      return id < 0 || static_cast<std::int64_t>(id) >= rows;
    } else {
      return static_cast<std::uint64_t>(id) >= static_cast<std::uint64_t>(rows);
    }
  };
  for (index_t begin = 0; begin < n; begin += kChunk) {
    const index_t end = std::min(n, begin + kChunk);
    bool any = false;
    for (index_t i = begin; i < end; ++i) any |= outside(ids[i]);
    if (!any) continue;
    for (index_t i = begin; i < end; ++i) {
      if (outside(ids[i])) return i;
    }
  }
  return n;
}

// A TypeError unless arr holds integers; an IndexError naming the first id outside [0, rows) and its
// position. Checks the ids in their own type, so no id is changed by a conversion before its check.
inline void check_ids(const py::array& arr, index_t rows, const std::string& name) {
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw py::type_error(name + ": expected integer token ids, got dtype " + dtype_name(arr) +
                         " (convert with .astype('int32') if the values are ids)");
  }
  const auto first_outside = [&](auto zero) {
    using Src = decltype(zero);
    const auto ids = contiguous<Src>(arr, name);
    return first_id_outside(ids.data(), static_cast<index_t>(ids.size()), rows);
  };
  const bool is_signed = kind == 'i';
  index_t n;
  switch (arr.itemsize()) {
    case 1: n = is_signed ? first_outside(std::int8_t{}) : first_outside(std::uint8_t{}); break;
    case 2: n = is_signed ? first_outside(std::int16_t{}) : first_outside(std::uint16_t{}); break;
    case 4: n = is_signed ? first_outside(std::int32_t{}) : first_outside(std::uint32_t{}); break;
    case 8: n = is_signed ? first_outside(std::int64_t{}) : first_outside(std::uint64_t{}); break;
    default: throw py::type_error(name + ": unsupported integer dtype " + dtype_name(arr));
  }
  if (n == static_cast<index_t>(arr.size())) return;
  std::string position;
  for (index_t d = arr.ndim() - 1, rest = n; d >= 0; --d) {
    position = std::to_string(rest % arr.shape(d)) + (position.empty() ? "" : ", ") + position;
    rest /= arr.shape(d);
  }
  throw py::index_error(name + ": token id " + py::str(arr.attr("flat")[py::int_(n)]).cast<std::string>() +
                        " at position (" + position + ") is outside [0, " + std::to_string(rows) + ")");
}

// Token ids as a C-contiguous array of Int, each checked to lie in [0, rows) (check_ids).
template <class Int>
py::array_t<Int> checked_ids(const py::handle& obj, index_t rows, const std::string& name) {
  py::array arr = to_array(obj, name);
  check_ids(arr, rows, name);
  return contiguous<Int>(arr, name);
}

// --- memory ----------------------------------------------------------------------------------------

// An uninitialized NumPy array whose memory comes from (and goes back to) the buffer pool.
template <class T>
py::array_t<T> new_array(const std::vector<index_t>& shape, const std::string& what) {
  const index_t n = checked_count(shape, sizeof(T), what);
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

template <class T>
py::array_t<T> copy_of(const py::array_t<T>& a) {
  auto out = new_array<T>(shape_of(a), "a copy");
  std::memcpy(out.mutable_data(), a.data(), sizeof(T) * static_cast<std::size_t>(a.size()));
  return out;
}

}  // namespace rnnkit
