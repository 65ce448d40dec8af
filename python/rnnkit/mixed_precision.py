"""Keras' mixed precision API: a dtype policy per layer (``dtype=``) or for every layer made afterwards
(``set_global_policy``).

A policy names the dtype of a layer's weights (``variable_dtype``) and of its computations
(``compute_dtype``). rnnkit has three: 'float32' (the default), 'float64', and 'mixed_bfloat16',
under which the weights stay float32 (the optimizer updates float32 weights) while the matrix products
of the recurrent layers (SimpleRNN, LSTM, GRU: the input projection, h_{t-1} @ recurrent_kernel and
the backward's products) read their inputs rounded to bfloat16 and sum the exact products in float32
(``rnnkit.kernels``' ``precision='bfloat16'``). Gates, states and outputs stay float32, as do the
other layers' computations, so a model's outputs are float32 under every policy.
"""

from __future__ import annotations

from typing import Union

__all__ = ["DTypePolicy", "Policy", "set_global_policy", "global_policy", "set_dtype_policy", "dtype_policy"]

# name -> (variable dtype, compute dtype)
POLICIES = {
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "mixed_bfloat16": ("float32", "bfloat16"),
}


class DTypePolicy:
    """Keras' DTypePolicy: ``name`` ('float32', 'float64' or 'mixed_bfloat16'), ``variable_dtype``
    and ``compute_dtype``."""

    def __init__(self, name: str = "float32") -> None:
        if isinstance(name, DTypePolicy):
            name = name.name
        if not isinstance(name, str) or name not in POLICIES:
            raise ValueError(f"Cannot convert {name!r} to a dtype policy: rnnkit has "
                             f"{', '.join(repr(p) for p in POLICIES)} (float16 products are not implemented)")
        self._name = name
        self._variable_dtype, self._compute_dtype = POLICIES[name]

    @property
    def name(self) -> str:
        return self._name

    @property
    def variable_dtype(self) -> str:
        return self._variable_dtype

    @property
    def compute_dtype(self) -> str:
        return self._compute_dtype

    def get_config(self) -> dict:
        return {"name": self._name}

    @classmethod
    def from_config(cls, config: dict) -> "DTypePolicy":
        return cls(**config)

    def __eq__(self, other) -> bool:
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self._name}">'


Policy = DTypePolicy

_global_policy = DTypePolicy("float32")


def as_policy(value: Union[str, dict, DTypePolicy, None]) -> DTypePolicy:
    """A layer's ``dtype`` argument as a policy: None (the global policy), a name or a numpy dtype
    ('float32', np.float64, ...), a DTypePolicy, or Keras' serialized form ({'class_name': 'DTypePolicy',
    'config': {'name': ...}})."""
    if value is None:
        return _global_policy
    if isinstance(value, DTypePolicy):
        return value
    if isinstance(value, dict):
        config = value.get("config") if isinstance(value.get("config"), dict) else {}
        return DTypePolicy(config.get("name", value.get("name")))
    if not (isinstance(value, str) and value in POLICIES):
        import numpy as np

        try:  # a numpy dtype or its other spellings: np.float32, 'f8', 'double'
            value = np.dtype(value).name
        except TypeError:
            raise ValueError(f"Cannot convert {value!r} to a dtype policy") from None
    return DTypePolicy(value)


def set_global_policy(policy: Union[str, DTypePolicy, None]) -> None:
    """The policy of every layer made afterwards without a ``dtype`` (None: back to 'float32')."""
    global _global_policy
    _global_policy = DTypePolicy("float32") if policy is None else as_policy(policy)


def global_policy() -> DTypePolicy:
    return _global_policy


set_dtype_policy = set_global_policy
dtype_policy = global_policy
