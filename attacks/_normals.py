"""Boundary normals of decision-based attacks, estimated from label-only probes.

At a boundary point ``x_b`` an image's normal is estimated from ``m`` probes ``x_b + σ·u_i``
(``u_i`` random directions of a :class:`~robustkit.attacks.dct.LowFrequencySampler`) as
``η = mean(s_i·u_i)``, ``s_i = +1`` for an adversarial probe and ``-1`` for a clean one, so that
``η`` points to the adversarial side. :class:`NormalEstimates` holds the probes ordered for many
images and lets a caller label them first in, first out, in as many query rounds as suits it:
CGBA fills every forward pass to the oracle's batch size with them, GeoDA labels each batch of
orders at once (:func:`estimate_normal`).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from robustkit.oracle import LabelOracle, StepCounter, request_rows

from ._boundary import view
from .dct import LowFrequencySampler


class NormalEstimates:
    """Normal estimates of the images of a batch, probe by probe.

    ``xb`` is the attack's tensor of boundary points (one row per image), read when the probes
    are built: an image's row must not change while its probes are pending. :meth:`order` asks
    for ``m`` probes of some images, :meth:`take` writes the next pending probes (oldest order
    first) into a buffer for labelling, :meth:`record` takes their verdicts and
    :meth:`completed` hands out the normals of the images whose probes are all labelled.

    ``shared=False`` draws every probe's direction afresh. ``shared=True`` draws them from a
    pool of ``pool_rows`` directions that all images read: image ``j`` reads the pool from a
    random offset on, ``m`` consecutive rows (cyclically) per order, and moves to a freshly drawn
    pool (with a new random offset) before it would read a row a second time. So each image's
    probes are still independent standard normal directions (in the sampler's subspace), fresh
    in every iteration, and which rows an image reads depends only on its own past: each image
    runs its attack exactly as alone, while images of the batch share directions. Drawing
    normal values is the costliest step after the forward passes on a CPU (10 µs per 32×32×3
    probe, a quarter of a cifar10/resnet4b-at forward pass): CGBA on the first 100 correctly
    classified CIFAR-10 test images of cifar10/resnet20 with 1,000 queries each reads 82,116
    probe directions from a single pool of 1,024 rows instead of drawing each one. An order of
    more than ``pool_rows`` probes draws its own. ``baseline=True`` subtracts the mean sign
    first (HopSkipJump's variance reduction; all probes on one side keep the plain mean).

    Either way an image's probes read consecutive rows of a table of coefficients (a pool, or
    directions drawn for one order): a *segment*, two where a pool wraps around. The bookkeeping
    of segments and the probes' signs live on the host, so probes are built straight from the
    tables (no gathering of rows; each segment clipped while it is in the cache) and a normal is
    computed once, when its image's last probe is labelled, as one matrix-vector product of the
    signs with its rows of the table (``Σ s_i·z_i``, then mapped to the image space: the DCT is
    linear). On a cheap model this per-probe work is what competes with the forward passes.
    """

    #: Bytes of subspace coefficients one pool of shared directions may hold.
    POOL_BYTES = 16 * 2**20

    def __init__(
        self,
        xb: torch.Tensor,
        sampler: LowFrequencySampler,
        generator: torch.Generator,
        sigma: float,
        baseline: bool = False,
        shared: bool = False,
        pool_rows: int | None = None,
    ):
        n, dev = xb.shape[0], xb.device
        self.xb = xb
        self.sampler = sampler
        self.generator = generator
        self.sigma = float(sigma)
        self.baseline = baseline
        self.shared = shared
        # Pending orders, oldest first: [owner per probe (tensor), segments, probes taken,
        # index of the segment being taken, sign per probe (host array, ±1, set by record)]. A
        # segment: (image, table, first row, rows, index of its first probe in the order).
        self._orders: deque[list] = deque()
        # Per image with an estimate under way: (its order's signs, its first probe there,
        # its probes, its segments).
        self._probes: dict[int, tuple[np.ndarray, int, int, list[tuple]]] = {}
        # The last take: (signs of its order, first probe there, row of the take, probes).
        self._taken: list[tuple[np.ndarray, int, int, int]] = []
        self._last: list[int] = []  # images whose last probe is in the last take
        self._done: list[int] = []  # images whose probes are all labelled, not yet handed out
        self.pending = 0
        if shared:
            row_bytes = sampler.dim * xb.element_size()
            self.pool_rows = pool_rows or int(min(1024, max(64, self.POOL_BYTES // row_bytes)))
            # generation g of the pool: self._pools[g] (None once no image reads it)
            self._pools: list[torch.Tensor | None] = []
            self._pool_of = [0] * n
            self._read = [0] * n  # rows read in its pool
            self._offset = torch.randint(
                self.pool_rows, (n,), generator=generator, device=dev, dtype=torch.long
            ).tolist()

    def order(self, idx: torch.Tensor, m: torch.Tensor) -> None:
        """Order ``m[j]`` probes at ``xb[idx[j]]`` (``idx`` distinct, none with probes pending);
        starts those images' estimates afresh."""
        pairs = [(j, k) for j, k in zip(idx.tolist(), m.tolist(), strict=True) if k > 0]
        if not pairs:
            return
        self.pending += sum(k for _, k in pairs)
        if not self.shared:
            self._own_table(pairs)
            return
        big = [(j, k) for j, k in pairs if k > self.pool_rows]
        if big:  # larger than a pool: directions of their own
            self._own_table(big)
            pairs = [(j, k) for j, k in pairs if k <= self.pool_rows]
            if not pairs:
                return
        # An image about to read a row of its pool a second time moves to the next pool.
        moved = [j for j, k in pairs if self._read[j] + k > self.pool_rows]
        if moved:
            offsets = torch.randint(
                self.pool_rows, (len(moved),), generator=self.generator, device=self.xb.device
            ).tolist()
            for j, offset in zip(moved, offsets, strict=True):
                self._pool_of[j] += 1
                self._read[j] = 0
                self._offset[j] = offset
        while len(self._pools) <= max(self._pool_of[j] for j, _ in pairs):
            self._pools.append(self.sampler.coefficients(self.pool_rows, self.generator))
        if moved:  # generations no image reads any more (pending probes hold their own refs)
            for g in range(min(self._pool_of)):
                self._pools[g] = None
        segments, p = [], 0
        for j, k in pairs:
            # Probe i of image j reads row offset_j + read_j + i (cyclically) of its pool.
            pool = self._pools[self._pool_of[j]]
            first = (self._offset[j] + self._read[j]) % self.pool_rows
            head = min(k, self.pool_rows - first)
            mine = [(j, pool, first, head, p)]
            if head < k:
                mine.append((j, pool, 0, k - head, p + head))
            self._read[j] += k
            segments.append(mine)
            p += k
        self._enqueue(pairs, segments)

    def _own_table(self, pairs: list[tuple[int, int]]) -> None:
        """Order probes whose directions are drawn for this order alone (one table, in order)."""
        table = self.sampler.coefficients(sum(k for _, k in pairs), self.generator)
        segments, p = [], 0
        for j, k in pairs:
            segments.append([(j, table, p, k, p)])
            p += k
        self._enqueue(pairs, segments)

    def _enqueue(self, pairs: list[tuple[int, int]], segments: list[list[tuple]]) -> None:
        """Queue an order: ``pairs`` (image, probes) in probe order, each image's segments."""
        # (Built on the host: torch.repeat_interleave costs 100 µs here.)
        owner = torch.tensor([j for j, k in pairs for _ in range(k)], device=self.xb.device)
        signs = np.empty(owner.numel(), dtype=np.float32)  # on the host: set by record
        at = 0
        for (j, k), mine in zip(pairs, segments, strict=True):
            self._probes[j] = (signs, at, k, mine)
            at += k
        self._orders.append([owner, [s for mine in segments for s in mine], 0, 0, signs])

    def take(self, out: torch.Tensor) -> torch.Tensor:
        """Write the next ``len(out)`` pending probes into ``out`` (clipped to [0, 1]) and return
        the image of each; their verdicts go to :meth:`record` before the next take."""
        k = out.shape[0]
        if k > self.pending:
            raise ValueError(f"{k} probes asked for, {self.pending} pending")
        owners, done = [], 0
        self._taken, self._last = [], []
        while done < k:
            entry = self._orders[0]
            owner, segments, pos, _, signs = entry
            cnt = min(k - done, owner.numel() - pos)
            owners.append(owner[pos : pos + cnt])
            self._taken.append((signs, pos, done, cnt))
            end = pos + cnt
            while pos < end:
                j, table, first, rows, p0 = segments[entry[3]]
                a, b = pos - p0, min(rows, end - p0)
                dirs = self.sampler.directions(table[first + a : first + b])
                at = done + pos - entry[2]
                torch.add(self.xb[j], dirs, alpha=self.sigma, out=out[at : at + b - a]).clamp_(0, 1)
                pos = p0 + b
                if b == rows:
                    entry[3] += 1
                    if entry[3] == len(segments) or segments[entry[3]][0] != j:
                        self._last.append(j)
            entry[2] = end
            if end == owner.numel():
                self._orders.popleft()
            done += cnt
        self.pending -= k
        return torch.cat(owners) if len(owners) != 1 else owners[0]

    def record(self, adversarial: torch.Tensor | np.ndarray) -> None:
        """The oracle's verdicts (adversarial or not) on the probes of the last :meth:`take`."""
        if isinstance(adversarial, torch.Tensor):
            adversarial = adversarial.cpu().numpy()
        for signs, at, row, cnt in self._taken:
            np.subtract(adversarial[row : row + cnt] * 2, 1, out=signs[at : at + cnt])
        self._taken = []
        self._done += self._last
        self._last = []

    def completed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The images whose ordered probes are all labelled since the last call (in increasing
        order), and their normals (not normalised)."""
        dev = self.xb.device
        if not self._done:
            return torch.zeros(0, dtype=torch.long, device=dev), self.xb.new_empty(
                (0,) + self.xb.shape[1:]
            )
        images = sorted(self._done)
        self._done = []
        shape = (len(images), self.sampler.shape[0]) + self.sampler.block
        coef = self.xb.new_zeros(shape)
        # The images' signs, gathered on the host and sent to the device at once.
        entries = [self._probes.pop(j) for j in images]
        signs = []
        for order_signs, at, k, _ in entries:
            s = order_signs[at : at + k]
            if self.baseline:
                # Σ(s_i − s̄)·z_i; all probes on one side keep the plain mean.
                mean = s.mean()
                s = s - (0 if abs(mean) == 1 else mean)
            signs.append(s)
        signs = torch.from_numpy(np.concatenate(signs)).to(dev, coef.dtype)
        first_sign = 0
        for r, (_, at, k, segments) in enumerate(entries):
            acc = coef[r].view(-1)
            for _, table, first, rows, p0 in segments:
                z = table[first : first + rows].reshape(rows, -1)
                lo = first_sign + p0 - at
                acc.addmv_(z.t(), signs[lo : lo + rows])
            first_sign += k
        eta = self.sampler.directions(coef)
        count = torch.tensor([k for _, _, k, _ in entries], device=dev, dtype=eta.dtype)
        return torch.tensor(images, device=dev), eta / view(count, eta)


def estimate_normal(
    oracle: LabelOracle,
    steps: StepCounter,
    sampler: LowFrequencySampler,
    generator: torch.Generator,
    xb: torch.Tensor,
    act: torch.Tensor,
    n_probes: int,
    sigma: float,
) -> torch.Tensor:
    """Boundary normals at ``xb[act]`` (``act`` distinct) from up to ``n_probes`` probes per
    image (fewer when its budget is nearly spent), each drawn independently, labelled in passes
    of the oracle's batch size; zero for an image without budget.

    The images go in groups whose probe directions fill at most
    :func:`~robustkit.oracle.request_rows` rows (one image at least), each group's directions
    drawn, labelled and summed before the next group's are drawn: GeoDA's later iterations
    take thousands of probes per image, and drawing every image's at once held 1.8 GiB for 100
    CIFAR-10 images at 5,000 queries (9 GiB for 500), growing with the budget."""
    m = oracle.remaining(act).clamp(max=n_probes)
    steps.add(act, m)
    row_bytes = sampler.dim * xb.element_size()
    cap = request_rows(oracle.batch_size, row_bytes, xb.device)
    out = torch.zeros((act.numel(),) + xb.shape[1:], device=xb.device, dtype=xb.dtype)
    where = torch.full((xb.shape[0],), -1, dtype=torch.long, device=xb.device)
    where[act] = torch.arange(act.numel(), device=xb.device)
    counts, first = m.tolist(), 0
    while first < len(counts):
        last, rows = first + 1, counts[first]
        while last < len(counts) and rows + counts[last] <= cap:
            rows += counts[last]
            last += 1
        estimates = NormalEstimates(xb, sampler, generator, sigma)
        estimates.order(act[first:last], m[first:last])
        while estimates.pending:
            batch = xb.new_empty((min(oracle.batch_size, estimates.pending),) + xb.shape[1:])
            owners = estimates.take(batch)
            estimates.record(oracle.is_adversarial(batch, owners))
        done, eta = estimates.completed()
        out[where[done]] = eta
        first = last
    return out
