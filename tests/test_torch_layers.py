"""rnnkit.torch against torch.nn itself: the same state_dict gives the same outputs, states and gradients
(float64: 1e-10 and 1e-9) for every cell, depth, direction, layout, unbatched input and PackedSequence."""

import itertools
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

import rnnkit  # noqa: E402
import rnnkit.torch as rt  # noqa: E402

CELLS = {  # name: (torch.nn class, rnnkit class, constructor options)
    "rnn_tanh": (torch.nn.RNN, rt.RNN, {}),
    "rnn_relu": (torch.nn.RNN, rt.RNN, {"nonlinearity": "relu"}),
    "lstm": (torch.nn.LSTM, rt.LSTM, {}),
    "gru": (torch.nn.GRU, rt.GRU, {}),
}
F, H = 5, 6


def twins(cell, dtype=torch.float64, **options):
    """A torch.nn layer and rnnkit's with the torch.nn layer's state_dict."""
    theirs_cls, mine_cls, cell_options = CELLS[cell]
    torch.manual_seed(0)
    theirs = theirs_cls(F, H, dtype=dtype, **cell_options, **options)
    mine = mine_cls(F, H, dtype=dtype, **cell_options, **options)
    mine.load_state_dict(theirs.state_dict())
    return theirs, mine


def initial_states(cell, layers, batch, unbatched=False):
    shape = (layers, H) if unbatched else (layers, batch, H)
    states = [torch.randn(shape, dtype=torch.float64, requires_grad=True) for _ in range(2 if cell == "lstm" else 1)]
    return tuple(states) if cell == "lstm" else states[0]


def flat(result):
    """The tensors of (output, h_n) or (output, (h_n, c_n)); a PackedSequence's data."""
    output, states = result
    output = output.data if isinstance(output, torch.nn.utils.rnn.PackedSequence) else output
    return [output, *(states if isinstance(states, tuple) else (states,))]


def gradients(module, inputs, result, seed=1):
    """d(sum of each result tensor times fixed random weights) w.r.t. the inputs and the parameters."""
    generator = torch.Generator().manual_seed(seed)
    tensors = flat(result)
    loss = sum((t * torch.randn(t.shape, generator=generator, dtype=t.dtype)).sum() for t in tensors)
    return torch.autograd.grad(loss, [*inputs, *module.parameters()], retain_graph=True)  # x may be shared


def assert_same(mine, theirs, rtol, atol):
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol)


def assert_parity(cell, x, hx=None, leaf=None, **options):
    """Checks rnnkit against torch.nn on x (made from `leaf`, when given, for the input gradient)."""
    theirs, mine = twins(cell, **options)
    inputs = [x if leaf is None else leaf] + ([] if hx is None else list(hx) if isinstance(hx, tuple) else [hx])
    r_theirs, r_mine = theirs(x, hx), mine(x, hx)
    assert_same(flat(r_mine), flat(r_theirs), 1e-10, 1e-10)
    assert_same(gradients(mine, inputs, r_mine), gradients(theirs, inputs, r_theirs), 1e-9, 1e-9)
    return r_mine, r_theirs


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers, bidirectional, batch_first",
                         [(1, False, False), (1, True, True), (3, False, True), (3, True, False)])
@pytest.mark.parametrize("given_states", [False, True])
def test_outputs_states_and_gradients_equal_torch_nn(cell, layers, bidirectional, batch_first, given_states):
    batch, steps = 4, 7
    shape = (batch, steps, F) if batch_first else (steps, batch, F)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    directions = 2 if bidirectional else 1
    hx = initial_states(cell, layers * directions, batch) if given_states else None
    assert_parity(cell, x, hx, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input_equals_torch_nn(cell, batch_first):
    x = torch.randn(6, F, dtype=torch.float64, requires_grad=True)
    (output, _), _ = assert_parity(cell, x, initial_states(cell, 4, 1, unbatched=True), num_layers=2,
                                   bidirectional=True, batch_first=batch_first)
    assert output.shape == (6, 2 * H)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequences_equal_torch_nn_and_keep_its_packing(cell, enforce_sorted, bidirectional):
    lengths = [7, 3, 5, 1, 7] if not enforce_sorted else [7, 7, 5, 3, 1]
    padded = torch.randn(5, 7, F, dtype=torch.float64, requires_grad=True)
    x = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=enforce_sorted)
    hx = initial_states(cell, 2 * (2 if bidirectional else 1), 5)
    (mine, _), (theirs, _) = assert_parity(cell, x, hx, leaf=padded, num_layers=2, bidirectional=bidirectional)
    assert torch.equal(mine.batch_sizes, theirs.batch_sizes)
    for a, b in ((mine.sorted_indices, theirs.sorted_indices), (mine.unsorted_indices, theirs.unsorted_indices)):
        assert (a is None and b is None) or torch.equal(a, b)
    unpacked, out_lengths = pad_packed_sequence(mine, batch_first=True)
    assert out_lengths.tolist() == lengths
    shortest = lengths.index(1)
    assert float(unpacked[shortest, 1:].detach().abs().max()) == 0.0  # the steps after a sequence's end stay padding


def test_a_packed_sequence_runs_only_each_sequences_real_steps():
    lengths = [6, 2, 4]
    padded = torch.randn(3, 6, F, dtype=torch.float64)
    _, lstm = twins("lstm", bidirectional=True, batch_first=True)
    packed_output, (h_n, c_n) = lstm(pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False))
    output, _ = pad_packed_sequence(packed_output, batch_first=True)
    for i, n in enumerate(lengths):  # each sequence alone, unpadded
        alone, (h_alone, c_alone) = lstm(padded[i : i + 1, :n])
        np.testing.assert_allclose(output[i : i + 1, :n].detach().numpy(), alone.detach().numpy(), rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(h_n[:, i].detach().numpy(), h_alone[:, 0].detach().numpy(), rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(c_n[:, i].detach().numpy(), c_alone[:, 0].detach().numpy(), rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_equals_torch_nn(cell):
    theirs, mine = twins(cell, dtype=torch.float32, num_layers=2, batch_first=True)
    x = torch.randn(8, 20, F, requires_grad=True)
    r_theirs, r_mine = theirs(x), mine(x)
    assert all(t.dtype == torch.float32 for t in flat(r_mine))
    assert_same(flat(r_mine), flat(r_theirs), 2e-5, 2e-6)
    assert_same(gradients(mine, [x], r_mine), gradients(theirs, [x], r_theirs), 1e-4, 1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck(cell):
    _, mine = twins(cell, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 4, F, dtype=torch.float64, requires_grad=True)
    hx = initial_states(cell, 4, 3)
    states = list(hx) if cell == "lstm" else [hx]

    def run(x, *rest):
        given = tuple(rest[: len(states)])
        return tuple(flat(mine(x, given if cell == "lstm" else given[0])))

    assert torch.autograd.gradcheck(run, (x, *states, *mine.parameters()), eps=1e-6, atol=1e-7)


def test_without_bias_and_state_dicts_load_both_ways():
    for cell in CELLS:
        theirs, mine = twins(cell, bias=False, num_layers=2)
        assert [n for n, _ in mine.named_parameters()] == [n for n, _ in theirs.named_parameters()]
        assert not any("bias" in n for n in mine.state_dict())
        x = torch.randn(5, 3, F, dtype=torch.float64)
        assert_same(flat(mine(x)), flat(theirs(x)), 1e-10, 1e-10)
        theirs.load_state_dict(mine.state_dict())  # and back


def test_inference_without_gradients_gives_the_same_numbers():
    _, lstm = twins("lstm", num_layers=2)
    x = torch.randn(9, 4, F, dtype=torch.float64)
    with torch.no_grad():
        inference = flat(lstm(x))
    assert not any(t.requires_grad for t in inference)
    assert_same(inference, flat(lstm(x)), 0, 0)


def test_retained_graph_gives_the_same_gradients_twice():
    _, gru = twins("gru")
    x = torch.randn(9, 4, F, dtype=torch.float64, requires_grad=True)
    loss = gru(x)[0].square().sum()
    first = torch.autograd.grad(loss, [x, *gru.parameters()], retain_graph=True)
    assert_same(torch.autograd.grad(loss, [x, *gru.parameters()]), first, 0, 0)


def test_bias_gradients_are_separate_tensors():
    _, rnn = twins("lstm")
    rnn(torch.randn(4, 2, F, dtype=torch.float64))[0].sum().backward()
    rnn.bias_ih_l0.grad.add_(1.0)
    assert not torch.equal(rnn.bias_ih_l0.grad, rnn.bias_hh_l0.grad)


def test_dropout_between_layers_applies_in_training_as_torch_nn_defines_it():
    torch.manual_seed(0)
    mine = rt.GRU(F, H, num_layers=2, dropout=0.5, dtype=torch.float64)
    first, second = (torch.nn.GRU(F if i == 0 else H, H, dtype=torch.float64) for i in range(2))
    for i, layer in enumerate((first, second)):
        layer.load_state_dict({name.replace(f"_l{i}", "_l0"): p for name, p in mine.state_dict().items()
                               if name.endswith(f"_l{i}")})
    x = torch.randn(6, 3, F, dtype=torch.float64)
    torch.manual_seed(7)
    output = mine(x)[0]
    torch.manual_seed(7)
    expected = second(torch.nn.functional.dropout(first(x)[0], 0.5, training=True))[0]
    np.testing.assert_allclose(output.detach().numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    mine.eval()
    assert_same([mine(x)[0]], [second(first(x)[0])[0]], 1e-12, 1e-12)


def test_convert_replaces_torch_nn_layers_sharing_their_parameters():
    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Sequential(torch.nn.Linear(F, F), torch.nn.Tanh())
            self.lstm = torch.nn.LSTM(F, H, batch_first=True, bidirectional=True, dtype=torch.float64)
            self.gru = torch.nn.ModuleList([torch.nn.GRU(2 * H, H, batch_first=True, dtype=torch.float64)])
            self.head = torch.nn.Linear(H, 1, dtype=torch.float64)

        def forward(self, x):
            return self.head(self.gru[0](self.lstm(self.encoder(x))[0])[0])

    torch.manual_seed(0)
    model = Tagger().double()
    twin = Tagger().double()
    twin.load_state_dict(model.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    twin_optimizer = torch.optim.Adam(twin.parameters(), lr=0.01)
    parameters = list(model.parameters())
    assert rt.convert(model) is model
    assert type(model.lstm) is rt.LSTM and type(model.gru[0]) is rt.GRU
    assert all(a is b for a, b in zip(model.parameters(), parameters))
    assert model.lstm.bidirectional and model.lstm.batch_first and model.lstm.weight_ih_l0.device.type == "cpu"
    x, y = torch.randn(4, 9, F, dtype=torch.float64), torch.randn(4, 9, 1, dtype=torch.float64)
    for _ in range(3):
        for m, opt in ((model, optimizer), (twin, twin_optimizer)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(m(x), y).backward()
            opt.step()
    assert_same(list(model.parameters()), list(twin.parameters()), 1e-9, 1e-12)
    assert type(rt.convert(torch.nn.GRU(3, 4))) is rt.GRU


def test_convert_draws_nothing_from_torchs_random_generator():
    layer = torch.nn.LSTM(F, H)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    rt.convert(layer)
    assert torch.equal(torch.rand(3), expected)


def test_what_rnnkit_cannot_run_gets_a_clear_error():
    with pytest.raises(ValueError, match="proj_size=3 is not supported"):
        rt.LSTM(F, H, proj_size=3)
    with pytest.raises(ValueError, match="proj_size=3 is not supported"):
        rt.convert(torch.nn.LSTM(F, H, proj_size=3))
    lstm = rt.LSTM(F, H)
    with pytest.raises(TypeError, match="float32 or float64.*got torch.float16"):
        lstm(torch.randn(3, 2, F).half())
    with pytest.raises(TypeError, match="parameters are torch.float32.*got torch.float64"):
        lstm(torch.randn(3, 2, F, dtype=torch.float64))
    with pytest.raises(ValueError, match="run on the CPU; the input is on meta"):
        lstm(torch.randn(3, 2, F, device="meta"))
    with pytest.raises(RuntimeError, match="Expected 5, got 4"):
        lstm(torch.randn(3, 2, 4))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        lstm(torch.randn(3, 2, 1, F))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 6\), got \[1, 3, 6\]"):
        lstm(torch.randn(3, 2, F), (torch.zeros(1, 3, H), torch.zeros(1, 3, H)))
    with pytest.raises(RuntimeError, match="hx should also be 3-D"):
        lstm(torch.randn(3, 2, F), (torch.zeros(2, H), torch.zeros(2, H)))


def test_every_constructor_option_round_trips_through_repr_and_state_dict():
    for (theirs_cls, mine_cls, options), layers, bidirectional in itertools.product(
            CELLS.values(), (1, 2), (False, True)):
        mine = mine_cls(F, H, num_layers=layers, bidirectional=bidirectional, **options)
        theirs = theirs_cls(F, H, num_layers=layers, bidirectional=bidirectional, **options)
        assert isinstance(mine, theirs_cls) and repr(mine) == repr(theirs)
        shapes = [{k: v.shape for k, v in layer.state_dict().items()} for layer in (mine, theirs)]
        assert shapes[0] == shapes[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_data_parallel_on_two_processes_equals_one_process_on_the_whole_batch(tmp_path):
    worker = Path(__file__).with_name("torch_ddp_worker.py")
    port = free_port()

    def start(rank, world):
        return subprocess.Popen([sys.executable, str(worker), str(rank), str(world), str(port),
                                 str(tmp_path / f"{world}-{rank}.pt")], stderr=subprocess.PIPE, text=True)

    processes = [start(0, 2), start(1, 2), start(0, 1)]
    for p in processes:
        try:
            _, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for q in processes:
                q.kill()
            raise
        assert p.returncode == 0, err
    alone = torch.load(tmp_path / "1-0.pt")
    torch.manual_seed(0)  # the workers' seed: the weights they started from
    initial = rt.LSTM(3, 5, num_layers=2, dtype=torch.float64)
    for rank in (0, 1):
        together = torch.load(tmp_path / f"2-{rank}.pt")
        assert together.keys() == alone.keys()
        for name in alone:
            np.testing.assert_allclose(together[name].numpy(), alone[name].numpy(), rtol=1e-9, atol=1e-12)
    assert not torch.allclose(alone["lstm.weight_hh_l1"], initial.weight_hh_l1)  # it did train


def subnormal_input_gradient(threads, flush_denormal):
    """The input gradient of an LSTM whose gradient fades over 300 steps into subnormal floats, and how
    many of its values are subnormal, computed on `threads` threads in the given mode."""
    rnnkit.set_num_threads(threads)
    torch.set_flush_denormal(flush_denormal)
    try:
        torch.manual_seed(0)
        lstm = rt.LSTM(8, 16, batch_first=True)
        x = (3 * torch.randn(12, 300, 8)).requires_grad_()
        lstm(x)[1][0].sum().backward()
    finally:
        torch.set_flush_denormal(False)
    dx = x.grad.numpy()
    return dx, int(((dx != 0) & (np.abs(dx) < np.finfo(np.float32).tiny)).sum())


@pytest.mark.parametrize("flush_denormal", [False, True])
def test_every_thread_computes_in_the_callers_flush_denormal_mode(flush_denormal):
    threads = rnnkit.get_num_threads()
    try:
        alone, subnormals = subnormal_input_gradient(1, flush_denormal)
        together, _ = subnormal_input_gradient(3, flush_denormal)
    finally:
        rnnkit.set_num_threads(threads)
    assert (subnormals == 0) == flush_denormal
    np.testing.assert_array_equal(together, alone)
