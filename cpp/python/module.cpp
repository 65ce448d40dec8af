// rnnkit._core: the module, its thread setting and build description, the embedding lookup and the
// fused RMSprop step. The recurrent entry points are bound in recurrent.cpp. Use rnnkit.kernels, the one
// door to these.
#include <atomic>
#include <cstdint>
#include <string>

#include "python/arrays.hpp"
#include "python/module.hpp"
#include "runtime/dispatch.hpp"

namespace rnnkit {
namespace {

std::atomic<int> g_threads{1};

template <class T>
py::array embedding_forward_impl(const py::handle& ids_obj, const py::array& table_arr) {
  const auto table = as_float_array<T>(table_arr, "table", "table");
  if (table.ndim() != 2) {
    throw py::value_error("table: expected a 2-D array (rows, width), got shape " + shape_string(shape_of(table)));
  }
  const index_t rows = table.shape(0), width = table.shape(1);
  const auto ids = checked_ids<std::int64_t>(ids_obj, rows, "ids");
  auto shape = shape_of(ids);
  shape.push_back(width);
  auto out = new_array<T>(shape, "the embedding output");
  const std::int64_t* id = ids.data();
  const T* t = table.data();
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    simd_build().get<T>().embedding_forward(id, ids.size(), t, width, o);
  }
  return std::move(out);
}

template <class T>
py::array embedding_backward_impl(const py::handle& ids_obj, const py::array& d_out_arr, index_t rows) {
  if (rows < 1) throw py::value_error("rows: expected a table of at least one row, got " + std::to_string(rows));
  const auto ids = checked_ids<std::int64_t>(ids_obj, rows, "ids");
  const auto d_out = as_float_array<T>(d_out_arr, "d_outputs", "d_outputs");
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
    simd_build().get<T>().embedding_backward(id, ids.size(), d, rows, width, g);
  }
  return std::move(d_table);
}

// An array the update writes in place: it must be the caller's own memory, so no copy is allowed.
template <class T>
py::array_t<T> in_place_array(const py::handle& obj, const std::string& name, const std::string& reference) {
  py::array arr = to_array(obj, name);
  if (!has_float_dtype(arr, sizeof(T))) {
    throw py::type_error(name + ": dtype " + dtype_name(arr) + " does not match " + reference + "'s " +
                         float_name(sizeof(T)));
  }
  if (!(arr.flags() & py::array::c_style) || !arr.writeable() || !py::isinstance<py::array_t<T>>(arr)) {
    throw py::value_error(name + ": expected a writeable, C-contiguous array in native byte order (it is updated "
                                 "in place)");
  }
  return py::reinterpret_borrow<py::array_t<T>>(arr);
}

template <class T>
void rmsprop_update_impl(const py::handle& weight_obj, const py::handle& grad_obj, const py::handle& velocity_obj,
                         double learning_rate, double rho, double epsilon) {
  auto weight = in_place_array<T>(weight_obj, "weight", "weight");
  auto velocity = in_place_array<T>(velocity_obj, "velocity", "weight");
  const auto grad = as_float_array<T>(grad_obj, "grad", "weight");
  expect_shape(grad, "grad", shape_of(weight), "(weight's shape)");
  expect_shape(velocity, "velocity", shape_of(weight), "(weight's shape)");
  T* w = weight.mutable_data();
  T* v = velocity.mutable_data();
  const T* g = grad.data();
  const index_t n = weight.size();
  const auto overlap = [n](const T* a, const T* b) { return a < b + n && b < a + n; };
  if (overlap(w, v) || overlap(w, g) || overlap(v, g)) {
    throw py::value_error("weight, grad and velocity: expected three separate arrays, got overlapping memory");
  }
  py::gil_scoped_release release;
  // (1 - rho) is formed in double, as the NumPy expression does, then rounded once to T
  simd_build().get<T>().rmsprop_update(n, w, g, v, T(learning_rate), T(rho), T(1.0 - rho), T(epsilon));
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
  info["simd"] = simd_build().isa;
  // how precision='bfloat16' runs its products: the same result bits either way (simd/bf16_gemm.cpp)
  info["bfloat16"] = simd_build().bfloat16_products();
  py::list available;
  for (const auto& isa : compiled_simd_builds()) {
    if (isa.supported) available.append(isa.name);
  }
  info["simd_available"] = available;
  info["float_types"] = py::make_tuple("float32", "float64");
  info["threads"] = g_threads.load();
  return info;
}

}  // namespace

int current_threads() { return g_threads.load(); }

}  // namespace rnnkit

PYBIND11_MODULE(_core, m) {
  using namespace rnnkit;
  m.doc() = "rnnkit's C++ extension. Use rnnkit.kernels, which wraps these with result objects.";
  simd_build();  // a bad RNNKIT_ISA fails the import, not the first call

  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: expected a thread count >= 1, got " + std::to_string(n));
    g_threads.store(n);
  });
  m.def("get_num_threads", [] { return g_threads.load(); });
  m.def("build_info", &build_info);
  bind_recurrent(m);
  m.def(
      "check_token_ids",
      [](const py::handle& ids, index_t rows, const std::string& name) { check_ids(to_array(ids, name), rows, name); },
      py::arg("ids"), py::arg("rows"), py::arg("name") = "ids",
      "IndexError naming the first id outside [0, rows) and its position");
  m.def(
      "rmsprop_update",
      [](const py::handle& weight, const py::handle& grad, const py::handle& velocity, double learning_rate,
         double rho, double epsilon) {
        const std::size_t size = float_size_of(to_array(weight, "weight"), "weight");
        RNNKIT_BY_FLOAT_TYPE(rmsprop_update_impl, size, weight, grad, velocity, learning_rate, rho, epsilon);
      },
      py::arg("weight"), py::arg("grad"), py::arg("velocity"), py::arg("learning_rate"), py::arg("rho"),
      py::arg("epsilon"), "One RMSprop step of weight and velocity, in place (rnnkit.optimizers.RMSprop)");
  m.def(
      "embedding_forward",
      [](const py::handle& ids, const py::handle& table) {
        const py::array t = to_array(table, "table");
        return RNNKIT_BY_FLOAT_TYPE(embedding_forward_impl, float_size_of(t, "table"), ids, t);
      },
      py::arg("ids"), py::arg("table"), "table[ids], with every id checked to lie in [0, len(table))");
  m.def(
      "embedding_backward",
      [](const py::handle& ids, const py::handle& d_outputs, index_t rows) {
        const py::array d = to_array(d_outputs, "d_outputs");
        return RNNKIT_BY_FLOAT_TYPE(embedding_backward_impl, float_size_of(d, "d_outputs"), ids, d, rows);
      },
      py::arg("ids"), py::arg("d_outputs"), py::arg("rows"),
      "Gradient of the table: d_outputs summed into the rows their ids name");
}
