// The arguments of one recurrent-layer call, shared by every cell, every SIMD build and the binding:
// the sizes in a Problem, then one struct per direction whose arrays come in named groups (as oneDNN
// describes every RNN cell with one configuration and one signature).
//
// Shapes: B batch, T timesteps, F features, H units, G gate columns (H SimpleRNN, 4H LSTM, 3H GRU),
// N packed rows (the real steps of all sequences, layout.hpp), V rows of an embedding table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace rnnkit {

using index_t = std::ptrdiff_t;

enum class Cell { simple_rnn, lstm, gru };
inline constexpr int kCells = 3;

// The activation of a SimpleRNN's state and of a GRU's candidate (Keras' `activation`; an LSTM's is
// tanh). The gates' recurrent activation is the sigmoid.
enum class Activation { tanh, relu, linear };

// G = gate_blocks(cell) · H: the columns of kernel (F,G) and recurrent_kernel (H,G).
constexpr index_t gate_blocks(Cell cell) { return cell == Cell::lstm ? 4 : cell == Cell::gru ? 3 : 1; }

// How the layer's matrix products take their inputs: as they are, or rounded to bfloat16 (float32
// only), the products exact and summed in float32 (Keras' mixed_bfloat16 policy; gemm.hpp).
enum class Precision { full, bfloat16 };

struct Problem {
  index_t batch = 0;
  index_t timesteps = 0;
  index_t features = 0;
  index_t units = 0;
  // Real length of each sequence (batch entries, each in [0, timesteps]); nullptr = all full length.
  const std::int64_t* lengths = nullptr;
  // Where the padding of a shorter sequence sits: before its tokens (Keras' pad_sequences default)
  // or after them.
  bool pre_padding = true;
  // The caller's sequences (x, outputs, d_outputs, dx) hold the real steps alone, (N, width) in the
  // kernels' packed order (layout.hpp), rather than (B, T, width); lengths are given, T is the longest.
  bool packed = false;
  // Packed only: each sequence runs from its last step to its first, each step's output in its own
  // row (the backward direction of a bidirectional layer).
  bool reverse = false;
  Precision precision = Precision::full;
  int threads = 1;
};

// Where x_t comes from: a dense x, or token ids into an embedding table, x_t = embeddings[ids[:, t]].
template <class T>
struct InputArgs {
  const T* x = nullptr;               // (B,T,F), dense; (N,F) packed
  const std::int32_t* ids = nullptr;  // (B,T) in [0, V), tokens (the backward reads Records::ids_packed)
  const T* embeddings = nullptr;      // (V,F), tokens
  index_t vocabulary = 0;             // V
  bool tokens() const { return embeddings != nullptr; }
};

template <class T>
struct WeightArgs {
  const T* kernel = nullptr;            // (F,G)
  const T* recurrent_kernel = nullptr;  // (H,G)
  const T* bias = nullptr;              // (G); GRU (2,3H): the input bias, then the recurrent bias
};

// What a forward keeps for its backward; all null for inference. T is the float type where the
// forward writes them, const where the backward reads them.
template <class T>
struct Records {
  using Id = std::conditional_t<std::is_const_v<T>, const std::int32_t, std::int32_t>;
  T* x_packed = nullptr;       // (N,F) dense input, in packed order
  Id* ids_packed = nullptr;    // (N) token input, in packed order
  T* states = nullptr;         // (B+N,H) the initial states, then the state after each real step
  T* gates = nullptr;          // (N,4H) LSTM: i f g o after their activations; GRU: z r hh m_h
  T* cells = nullptr;          // (B+N,H) LSTM: the cell states, laid out as states
  T* tanh_cells = nullptr;     // (N,H) LSTM
  T* masked_states = nullptr;  // (B+N,H) with a recurrent mask: h_{t-1} times it, as the product read it

  bool kept() const { return states != nullptr; }
};

// Which records a cell keeps besides its input and states: gates (N, kGateRecordBlocks·H) and, for
// an LSTM, cells and tanh_cells.
inline constexpr index_t kGateRecordBlocks = 4;
struct RecordSet {
  bool gates, cells;
};
constexpr RecordSet records_of(Cell cell) { return {cell != Cell::simple_rnn, cell == Cell::lstm}; }

template <class T>
struct ForwardCall {
  Problem problem;
  Activation activation = Activation::tanh;
  InputArgs<T> input;
  WeightArgs<T> weights;
  const T* h0 = nullptr;              // (B,H) or null = zeros
  const T* c0 = nullptr;              // (B,H) LSTM, or null = zeros
  const T* recurrent_mask = nullptr;  // (B,H) recurrent dropout: the product reads h_{t-1} times it; or null
  T* outputs = nullptr;               // (B,T,H) or packed (N,H), or null when only the last states are wanted
  T* h_last = nullptr;                // (B,H)
  T* c_last = nullptr;                // (B,H) LSTM
  Records<T> records;
};

template <class T>
struct Gradients {
  T* dx = nullptr;           // (B,T,F) or packed (N,F), dense input
  T* dembeddings = nullptr;  // (V,F), token input
  T* dkernel = nullptr;
  T* drecurrent_kernel = nullptr;
  T* dbias = nullptr;
  T* dh0 = nullptr;
  T* dc0 = nullptr;  // LSTM
};

template <class T>
struct BackwardCall {
  Problem problem;
  Activation activation = Activation::tanh;  // the forward's
  InputArgs<T> input;                 // tokens: embeddings and vocabulary
  WeightArgs<T> weights;              // kernel and recurrent_kernel as the forward used them; bias unused
  const T* recurrent_mask = nullptr;  // the forward's
  Records<const T> records;           // the forward's
  const T* d_outputs = nullptr;       // (B,T,H) or packed (N,H), or null = zero
  const T* d_h = nullptr;             // (B,H) or null = zero
  const T* d_c = nullptr;             // (B,H) LSTM, or null = zero
  Gradients<T> grads;                 // each shaped like what it is the gradient of
};

}  // namespace rnnkit
