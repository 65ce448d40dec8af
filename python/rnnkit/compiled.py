"""What ``compile`` sets up, as Keras' compile does: an optimizer, a loss per output (with its weight),
metrics per output, and the running means the logs report. Names in the logs follow Keras: ``loss``
and each metric by the name it was given; with several outputs also ``<output>_loss`` and
``<output>_<metric>``."""

from __future__ import annotations

import numpy as np

from . import losses, metrics, optimizers


def _per_output(value, output_names, what):
    """A value for each output, from one value for all, a list in output order, or a dict by name."""
    if isinstance(value, dict):
        unknown = set(value) - set(output_names)
        if unknown:
            raise ValueError(f"compile: {what} for unknown outputs {sorted(unknown)}; the outputs are {output_names}")
        return [value.get(name) for name in output_names]
    if isinstance(value, (list, tuple)) and len(output_names) > 1:
        if len(value) != len(output_names):
            raise ValueError(f"compile: {len(value)} {what} for {len(output_names)} outputs")
        return list(value)
    return [value] * len(output_names)


class Compiled:
    def __init__(self, optimizer, loss, metrics_spec, loss_weights, output_names, weighted_metrics_spec=None):
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='binary_crossentropy'")
        self.optimizer = optimizers.get(optimizer)
        self.output_names = list(output_names)
        self.losses = [None if spec is None else losses.get(spec) for spec in
                       _per_output(loss, self.output_names, "losses")]
        if all(loss is None for loss in self.losses):
            raise ValueError("compile: every output's loss is None")
        weights = _per_output(1.0 if loss_weights is None else loss_weights, self.output_names, "loss weights")
        self.loss_weights = [1.0 if w is None else float(w) for w in weights]
        # metrics see no sample weights, weighted_metrics do (Keras' split)
        self.metric_specs = self._specs(metrics_spec, "metrics")
        self.weighted_specs = self._specs(weighted_metrics_spec, "weighted_metrics")
        self.metrics = None  # per output, built from the first batch's shapes (they decide what 'acc' is)
        self._pending_state = None  # running means restored before the metrics exist (restore_state)
        self.loss_tracker = metrics.Mean(name="loss")
        several = len(self.output_names) > 1
        self.output_loss_trackers = [metrics.Mean(name=f"{name}_loss") if several and loss is not None else None
                                     for name, loss in zip(self.output_names, self.losses)]

    def _specs(self, spec, what):
        """Per output, the list of metric specs compile was given (one list for all, per output, by name)."""
        if spec is None:
            per_output = [[] for _ in self.output_names]
        elif isinstance(spec, dict):
            per_output = _per_output(spec, self.output_names, what)
        elif len(self.output_names) > 1 and spec and all(isinstance(m, (list, tuple)) or m is None for m in spec):
            per_output = _per_output(list(spec), self.output_names, what)
        else:
            per_output = [spec] * len(self.output_names)
        specs = [[] if m is None else (list(m) if isinstance(m, (list, tuple)) else [m]) for m in per_output]
        for output_specs in specs:
            for one in output_specs:
                metrics.check(one)
        return specs

    # --- per batch -------------------------------------------------------------------------------------

    def build_metrics(self, y_trues, y_preds):
        if self.metrics is not None:
            return
        several = len(self.output_names) > 1
        self.metrics = []
        for name, specs, weighted, y, p in zip(self.output_names, self.metric_specs, self.weighted_specs, y_trues,
                                               y_preds):
            built = [(metrics.get(spec, np.shape(y), np.shape(p)), False) for spec in specs]
            built += [(metrics.get(spec, np.shape(y), np.shape(p)), True) for spec in weighted]
            if several:
                for m, _ in built:
                    m.name = f"{name}_{m.name}"
            self.metrics.append(built)
        if self._pending_state is not None:
            self.set_state(self._pending_state)
            self._pending_state = None

    def loss_and_gradients(self, y_trues, y_preds, sample_weights, masks, logits):
        """(total loss, per output its gradient (w.r.t. the prediction, or its logits where the output's
        activation is fused with its loss; None without a loss), per output its loss value)."""
        total, grads, values = 0.0, [], []
        for loss, weight, y, p, sw, mask, z in zip(self.losses, self.loss_weights, y_trues, y_preds, sample_weights,
                                                   masks, logits):
            if loss is None:
                grads.append(None)
                values.append(None)
                continue
            if y is None:
                raise ValueError(f"labels for the output '{self.output_names[len(grads)]}' are required (its loss is "
                                 f"{loss.name})")
            value, grad = loss.value_and_gradient(y, p, sw, mask, logits=z)
            total += weight * value
            grads.append(grad * weight if weight != 1.0 else grad)
            values.append(value)
        return total, grads, values

    def update_state(self, loss, output_losses, batch_size, y_trues, y_preds, sample_weights, masks):
        """The running means after a batch: the loss weighted by the batch size, as Keras' tracker."""
        self.build_metrics(y_trues, y_preds)
        self.loss_tracker.update_state(np.float64(loss), sample_weight=batch_size)
        for tracker, value in zip(self.output_loss_trackers, output_losses):
            if tracker is not None:
                tracker.update_state(np.float64(value), sample_weight=batch_size)
        for built, y, p, sw, mask in zip(self.metrics, y_trues, y_preds, sample_weights, masks):
            for m, weighted in built:
                m.update_state(y, p, sw if weighted else None, mask=mask)

    # --- results ---------------------------------------------------------------------------------------

    def _all(self):
        trackers = [self.loss_tracker] + [t for t in self.output_loss_trackers if t is not None]
        return trackers + [m for built in (self.metrics or []) for m, _ in built]

    def results(self) -> dict:
        return {m.name: m.result() for m in self._all()}

    def reset(self):
        self._pending_state = None
        for m in self._all():
            m.reset_state()

    @property
    def metrics_names(self):
        names = ["loss"] + [t.name for t in self.output_loss_trackers if t is not None]
        if self.metrics is not None:
            return names + [m.name for built in self.metrics for m, _ in built]
        several = len(self.output_names) > 1
        return names + [f"{name}_{spec}" if several else str(getattr(spec, "name", spec))
                        for name, specs, weighted in zip(self.output_names, self.metric_specs, self.weighted_specs)
                        for spec in specs + weighted]

    def get_state(self):
        return [m.get_state() for m in self._all()]

    def set_state(self, states):
        for m, state in zip(self._all(), states):
            m.set_state(state)

    def restore_state(self, states):
        """The running means a backup recorded, applied now or, before the first batch has built the
        metrics, once it has (their running means then continue from these)."""
        if self.metrics is None:
            self._pending_state = states
        else:
            self.set_state(states)

    # --- saving ----------------------------------------------------------------------------------------

    def get_config(self):
        return {"losses": [None if loss is None else loss.get_config() for loss in self.losses],
                "loss_weights": self.loss_weights,
                "metrics": [[metrics.spec_name(spec) for spec in specs] for specs in self.metric_specs],
                "weighted_metrics": [[metrics.spec_name(spec) for spec in specs] for specs in self.weighted_specs]}
