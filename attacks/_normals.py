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

import torch

from robustkit.oracle import LabelOracle, StepCounter

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
        self.shared = shared
        self._eta = torch.zeros_like(xb)  # Σ s_i·u_i per image
        self._dirs = torch.zeros_like(xb) if baseline else None  # Σ u_i per image
        self._signs = torch.zeros(n, device=dev, dtype=xb.dtype)  # Σ s_i per image
        self._ordered = torch.zeros(n, dtype=torch.long, device=dev)
        self._unlabelled = torch.zeros(n, dtype=torch.long, device=dev)
        # Pending orders, oldest first: [owner per probe, table of coefficients, its row per
        # probe (None: probe i reads row i), probes already taken].
        self._orders: deque[list] = deque()
        self._taken: list[tuple[torch.Tensor, torch.Tensor, int]] = []
        self._owners = torch.zeros(0, dtype=torch.long, device=dev)  # images of the last take
        self._z = None  # reused buffer of pool rows (fresh buffers cost page faults on a CPU)
        self.pending = 0
        if shared:
            row_bytes = sampler.dim * xb.element_size()
            self.pool_rows = pool_rows or int(min(1024, max(64, self.POOL_BYTES // row_bytes)))
            self._pools: list[torch.Tensor] = []  # generation g of the pool: self._pools[g]
            self._pool_of = torch.zeros(n, dtype=torch.long, device=dev)
            self._read = torch.zeros(n, dtype=torch.long, device=dev)  # rows read in its pool
            self._offset = torch.randint(
                self.pool_rows, (n,), generator=generator, device=dev, dtype=torch.long
            )

    def order(self, idx: torch.Tensor, m: torch.Tensor) -> None:
        """Order ``m[j]`` probes at ``xb[idx[j]]`` (``idx`` distinct, none with probes pending);
        starts those images' estimates afresh."""
        keep = m > 0
        idx, m = idx[keep], m[keep]
        if idx.numel() == 0:
            return
        self._eta.index_fill_(0, idx, 0)
        if self._dirs is not None:
            self._dirs.index_fill_(0, idx, 0)
        self._signs[idx] = 0
        self._ordered[idx] = m
        self._unlabelled[idx] = m
        self.pending += int(m.sum())
        if not self.shared:
            owner = torch.repeat_interleave(idx, m)
            table = self.sampler.coefficients(owner.numel(), self.generator)
            self._orders.append([owner, table, None, 0])
            return
        big = m > self.pool_rows
        if big.any():  # larger than a pool: directions of their own
            owner = torch.repeat_interleave(idx[big], m[big])
            table = self.sampler.coefficients(owner.numel(), self.generator)
            self._orders.append([owner, table, None, 0])
            idx, m = idx[~big], m[~big]
            if idx.numel() == 0:
                return
        # An image about to read a row of its pool a second time moves to the next pool.
        full = self._read[idx] + m > self.pool_rows
        if full.any():
            moved = idx[full]
            self._pool_of[moved] += 1
            self._read[moved] = 0
            self._offset[moved] = torch.randint(
                self.pool_rows, (moved.numel(),), generator=self.generator, device=idx.device
            )
        pools = self._pool_of[idx]
        first, last = int(pools.min()), int(pools.max())
        while len(self._pools) <= last:
            self._pools.append(self.sampler.coefficients(self.pool_rows, self.generator))
        local = torch.repeat_interleave(torch.arange(idx.numel(), device=idx.device), m)
        owner = idx[local]
        # Probe i of image j reads row offset_j + read_j + i (cyclically) of its pool.
        into = torch.arange(owner.numel(), device=idx.device) - (torch.cumsum(m, 0) - m)[local]
        row = (self._offset[idx] + self._read[idx])[local] + into
        row.remainder_(self.pool_rows)
        self._read[idx] += m
        if first == last:
            self._orders.append([owner, self._pools[first], row, 0])
            return
        # Images of several pools: one table for this order, in probe order.
        table = torch.empty(
            (owner.numel(),) + self._pools[0].shape[1:], device=row.device, dtype=self.xb.dtype
        )
        for g in range(first, last + 1):
            at = (pools[local] == g).nonzero().flatten()
            table[at] = self._pools[g].index_select(0, row[at])
        self._orders.append([owner, table, None, 0])

    def take(self, out: torch.Tensor) -> torch.Tensor:
        """Write the next ``len(out)`` pending probes into ``out`` (clipped to [0, 1]) and return
        the image of each; their verdicts go to :meth:`record` before the next take."""
        k = out.shape[0]
        if k > self.pending:
            raise ValueError(f"{k} probes asked for, {self.pending} pending")
        owners, done = [], 0
        self._taken = []
        while done < k:
            entry = self._orders[0]
            owner, table, row, start = entry
            cnt = min(k - done, owner.numel() - start)
            who = owner[start : start + cnt]
            if row is None:
                z = table[start : start + cnt]
            else:
                if self._z is None or self._z.shape[0] < k:
                    self._z = table.new_empty((k,) + table.shape[1:])
                z = torch.index_select(
                    table, 0, row[start : start + cnt], out=self._z[done : done + cnt]
                )
            dirs = self.sampler.directions(z)
            rows = out[done : done + cnt]
            torch.index_select(self.xb, 0, who, out=rows)
            rows.add_(dirs, alpha=self.sigma)
            self._taken.append((who, dirs, done))
            owners.append(who)
            entry[3] += cnt
            if entry[3] == owner.numel():
                self._orders.popleft()
            done += cnt
        out.clamp_(0, 1)
        self.pending -= k
        self._owners = torch.cat(owners) if len(owners) != 1 else owners[0]
        return self._owners

    def record(self, adversarial: torch.Tensor) -> None:
        """The oracle's verdicts (adversarial or not) on the probes of the last :meth:`take`."""
        if not self._taken:
            return
        signs = adversarial.to(self._eta.dtype).mul_(2).sub_(1)
        self._signs.index_add_(0, self._owners, signs)
        self._unlabelled.sub_(torch.bincount(self._owners, minlength=self._unlabelled.numel()))
        for who, dirs, at in self._taken:
            s = signs[at : at + who.numel()]
            if self._dirs is not None:
                self._dirs.index_add_(0, who, dirs)
            # dirs is this take's own copy, or rows of a one-off table nobody reads again.
            self._eta.index_add_(0, who, dirs.mul_(view(s, dirs)))
        self._taken = []

    def completed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The images whose ordered probes are all labelled since the last call, and their
        normals (not normalised)."""
        done = ((self._unlabelled == 0) & (self._ordered > 0)).nonzero().flatten()
        if done.numel() == 0:
            return done, self._eta.new_empty((0,) + self._eta.shape[1:])
        count = self._ordered[done].to(self._eta.dtype)
        self._ordered[done] = 0
        eta = self._eta.index_select(0, done)
        if self._dirs is not None:
            # Σ(s_i − s̄)·u_i = Σ s_i·u_i − s̄·Σ u_i
            mean_s = self._signs[done] / count
            mean_s[mean_s.abs() == 1] = 0
            eta -= view(mean_s, eta) * self._dirs.index_select(0, done)
        return done, eta / view(count, eta)


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
    of the oracle's batch size; zero for an image without budget."""
    m = oracle.remaining(act).clamp(max=n_probes)
    estimates = NormalEstimates(xb, sampler, generator, sigma)
    estimates.order(act, m)
    steps.add(act, m)
    while estimates.pending:
        rows = xb.new_empty((min(oracle.batch_size, estimates.pending),) + xb.shape[1:])
        owners = estimates.take(rows)
        estimates.record(oracle.is_adversarial(rows, owners))
    done, eta = estimates.completed()
    out = torch.zeros((act.numel(),) + xb.shape[1:], device=xb.device, dtype=xb.dtype)
    where = torch.full((xb.shape[0],), -1, dtype=torch.long, device=xb.device)
    where[act] = torch.arange(act.numel(), device=xb.device)
    out[where[done]] = eta
    return out
