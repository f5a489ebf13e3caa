"""A population anomaly model: unusual *combinations* of personal deviations.

One model is shared by all patients of a Kafka partition. It sees each vitals
set as the patients' own z-scores (``twin.learning.baseline``), clipped to
``+-z_clip`` and mapped to ``[0, 1]`` as river's ``anomaly.HalfSpaceTrees``
expects; 0.5 is the patient's own mean. Personal normalisation first means
the population model learns what joint deviations are common (a fever with a
faster heart) rather than which patients run fast, and one model serves
patients with very different baselines. A vital without a trusted baseline is
left out of the vector; half-space trees then follow the heavier branch, as
river does for missing features.

Half-space trees suit a stream shared by thousands of patients: constant time
and memory, no stored samples (unlike ``LocalOutlierFactor``), and a window
(``window_size``) that keeps adapting to the population. Scores are 0 until the
first window is full; higher is more anomalous.

Checkpoint format (:meth:`PopulationAnomalyModel.dumps`): the trees' shape is
a pure function of the seed and the feature names, so only the node masses are
stored, zlib-compressed, behind a version tag, the parameters and a
fingerprint of the regenerated splits that :meth:`~PopulationAnomalyModel.loads`
checks. A pickle of the same model is about ten times larger.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from array import array
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Self

from river import anomaly

from twin.learning.errors import LearnedStateError, UnsupportedLearnedStateVersion
from twin.learning.vitals import VITAL_NAMES

__all__ = ["ANOMALY_STATE_VERSION", "PopulationAnomalyModel"]

ANOMALY_STATE_VERSION = 1
_MAGIC = b"TWHST"
# version, n_trees, height, window_size, seed, z_clip, counter, first window,
# number of features; then the feature names, the fingerprint and the masses.
_HEADER = struct.Struct("<BHBIqdIBB")
_FINGERPRINT_SIZE = 16


class _FlatTree(NamedTuple):
    """One of river's half-space trees as lists, breadth first: the children of
    node ``i`` are ``2i+1`` and ``2i+2`` (walking lists is about twice as fast
    as walking river's node objects)."""

    features: list[int]  # positions in ``feature_names``; 0 at the leaves, never split
    thresholds: list[float]
    l_mass: list[int]
    r_mass: list[int]


def _child(i: int, value: float | None, threshold: float, l_mass: list[int]) -> int:
    """The child of node ``i`` that ``value`` goes to; the heavier one when it is
    missing (river's ``PaddedBranch.next``)."""
    left = 2 * i + 1
    if value is None:
        return left + 1 if l_mass[left] < l_mass[left + 1] else left
    return left if value < threshold else left + 1


class PopulationAnomalyModel:
    """Half-space trees over clipped personal z-scores, one per partition.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(1)
    >>> model = PopulationAnomalyModel(window_size=100, seed=7)
    >>> for _ in range(300):
    ...     model.learn_one({name: rng.gauss(0, 1) for name in model.feature_names})
    >>> typical = {name: 0.2 for name in model.feature_names}
    >>> shocked = {"heart_rate": 4.5, "respiratory_rate": 4.0, "systolic_bp": -4.0}
    >>> model.score_one(shocked) > model.score_one(typical)
    True
    >>> PopulationAnomalyModel.loads(model.dumps()).score_one(shocked) == model.score_one(shocked)
    True
    """

    __slots__ = (
        "_counter",
        "_dfs",
        "_first_window",
        "_hst",
        "_tree_fingerprint",
        "_trees",
        "feature_names",
        "z_clip",
    )

    def __init__(
        self,
        *,
        feature_names: Sequence[str] = VITAL_NAMES,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        z_clip: float = 5.0,
        seed: int = 42,
    ) -> None:
        if not 0 < window_size <= 0xFFFF:
            raise ValueError("window_size must be in 1..65535 (masses are stored as uint16)")
        if len(set(feature_names)) != len(feature_names) or not feature_names:
            raise ValueError("feature_names must be distinct and not empty")
        self.feature_names = tuple(feature_names)
        self.z_clip = z_clip
        # River grows the trees (from the seed, on the first vector); from then
        # on they live in ``_trees`` and river's own nodes are not read again.
        self._hst: Any = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )
        self._trees: list[_FlatTree] = []
        self._dfs: list[int] = []  # breadth-first indices in river's depth-first order
        self._tree_fingerprint: bytes | None = None  # of ``_trees``, which never change
        self._counter = 0
        self._first_window = True

    def _adopt(self) -> None:
        """Copy the trees river just grew, with their masses and window, into flat lists."""
        hst = self._hst
        position = {name: k for k, name in enumerate(self.feature_names)}
        self._trees = []
        self._tree_fingerprint = None
        for root in hst.trees:
            nodes = [root]  # breadth first: the children of node i are 2i+1 and 2i+2
            for node in nodes:
                if len(nodes) >= 2 ** (hst.height + 1) - 1:
                    break
                nodes.extend(node.children)
            index = {id(node): i for i, node in enumerate(nodes)}
            self._dfs = [index[id(node)] for node in root.iter_dfs()]
            self._trees.append(
                _FlatTree(
                    [position[node.feature] if hasattr(node, "feature") else 0 for node in nodes],
                    [getattr(node, "threshold", 0.0) for node in nodes],
                    [node.l_mass for node in nodes],
                    [node.r_mass for node in nodes],
                )
            )
        self._counter, self._first_window = hst.counter, bool(hst._first_window)

    def features(self, zscores: Mapping[str, float | None]) -> dict[str, float]:
        """The HST input: known z-scores clipped and mapped to ``[0, 1]``.

        >>> PopulationAnomalyModel(z_clip=5.0).features({"heart_rate": 2.5, "spo2": -9.0})
        {'heart_rate': 0.75, 'spo2': 0.0}
        """
        values = self._values(zscores)
        return {n: v for n, v in zip(self.feature_names, values, strict=True) if v is not None}

    def _values(self, zscores: Mapping[str, float | None]) -> list[float | None]:
        """:meth:`features` as a list in ``feature_names`` order, None where unknown
        (what the walks index by the trees' feature positions)."""
        c = self.z_clip
        out: list[float | None] = []
        for name in self.feature_names:
            z = zscores.get(name)
            if z is not None:
                # min(max(z, -c), c), ties keeping the first, without the builtins' calls
                if -c > z:
                    z = -c
                if c < z:
                    z = c
                z = (z + c) / (2 * c)
            out.append(z)
        return out

    def score_one(self, zscores: Mapping[str, float | None]) -> float:
        """Anomaly score in ``[0, 1]``, higher is more unusual; 0 during the first window.

        River's ``HalfSpaceTrees.score_one``: each walk adds ``r_mass * 2**depth``
        and stops below a node whose mass is under a tenth of the window.
        """
        if self._first_window:
            return 0.0
        x = self._values(zscores)
        size_limit = 0.1 * self._hst.window_size
        height = self._hst.height
        total = 0.0
        for features, thresholds, l_mass, r_mass in self._trees:
            i = 0
            depth_pow = 1
            for _ in range(height):
                r = r_mass[i]
                total += r * depth_pow
                if r < size_limit:
                    break
                i = _child(i, x[features[i]], thresholds[i], l_mass)
                depth_pow <<= 1
            else:
                total += r_mass[i] * depth_pow
        return float(1 - total / self._max_score())

    def learn_one(self, zscores: Mapping[str, float | None]) -> None:
        """Add one vitals set to the current window."""
        x = self._values(zscores)
        if not self._trees:  # the first vector fixes the trees' features: give them all
            full = {n: 0.5 if v is None else v for n, v in zip(self.feature_names, x, strict=True)}
            self._hst.learn_one(full)
            self._adopt()
            return
        height = self._hst.height
        for features, thresholds, l_mass, _ in self._trees:
            i = 0
            for _ in range(height):
                l_mass[i] += 1
                i = _child(i, x[features[i]], thresholds[i], l_mass)
            l_mass[i] += 1
        self._count_one()

    def _count_one(self) -> None:
        """Close the window when full: its masses become the reference ones."""
        self._counter += 1
        if self._counter == self._hst.window_size:
            for tree in self._trees:
                tree.r_mass[:] = tree.l_mass
                tree.l_mass[:] = [0] * len(tree.l_mass)
            self._first_window = False
            self._counter = 0

    def _max_score(self) -> int:
        hst = self._hst
        return int(hst.n_trees * hst.window_size * (2 ** (hst.height + 1) - 1))

    def score_and_learn_one(self, zscores: Mapping[str, float | None]) -> float:
        """:meth:`score_one` then :meth:`learn_one`, in one walk of each tree.

        River walks every tree twice for the two (scoring stops early where the
        mass is small, learning goes to the leaf); the paths are the same, since
        a walk compares the masses of children it has not yet counted. Scores,
        masses and window pivots are exactly those of the two calls, and of
        river's own ``HalfSpaceTrees``:

        >>> import random
        >>> from river import anomaly
        >>> rng = random.Random(5)
        >>> a, b = PopulationAnomalyModel(window_size=40), PopulationAnomalyModel(window_size=40)
        >>> a.prepare()
        >>> b.prepare()
        >>> river_hst = anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=40, seed=42)
        >>> river_hst.learn_one(dict.fromkeys(VITAL_NAMES, 0.5))
        >>> for nodes in river_hst._tree_nodes:
        ...     for node in nodes:
        ...         node.l_mass = node.r_mass = 0
        >>> river_hst.counter = 0
        >>> xs = [{n: rng.gauss(0, 1) for n in VITAL_NAMES[: 2 + i % 5]} for i in range(200)]
        >>> fused = [a.score_and_learn_one(x) for x in xs]
        >>> twice, by_river = [], []
        >>> for x in xs:
        ...     twice.append(b.score_one(x))
        ...     b.learn_one(x)
        ...     by_river.append(float(river_hst.score_one(a.features(x))))
        ...     river_hst.learn_one(a.features(x))
        >>> fused == twice == by_river and a.dumps() == b.dumps()
        True
        """
        if not self._trees:  # the first vector builds the trees (see learn_one)
            score = self.score_one(zscores)
            self.learn_one(zscores)
            return score
        x = self._values(zscores)
        scoring = not self._first_window
        height = self._hst.height
        size_limit = 0.1 * self._hst.window_size
        # Masses are ints: their int sum is exact, as river's float one is below
        # 2**53, and the divisions round the same exact quotient (~5 % faster).
        total = 0
        for features, thresholds, l_mass, r_mass in self._trees:
            # river.anomaly.hst._walk_score and _walk_learn, fused, on the flat tree.
            i = 0
            depth_pow = 1
            open_ = scoring
            for _ in range(height):
                if open_:
                    r = r_mass[i]
                    total += r * depth_pow
                    if r < size_limit:
                        open_ = False
                l_mass[i] += 1
                left = 2 * i + 1
                value = x[features[i]]
                if value is None:  # the heavier side, as river does for a missing feature
                    i = left + 1 if l_mass[left] < l_mass[left + 1] else left
                else:
                    i = left if value < thresholds[i] else left + 1
                depth_pow <<= 1
            if open_:
                total += r_mass[i] * depth_pow
            l_mass[i] += 1
        self._count_one()
        return float(1 - total / self._max_score()) if scoring else 0.0

    def prepare(self) -> None:
        """Build the trees now rather than on the first vitals set (about 16 ms, which
        would land inside a batch); the model stays as untrained as before.

        >>> import random
        >>> rng = random.Random(3)
        >>> xs = [{n: rng.gauss(0, 1) for n in VITAL_NAMES} for _ in range(400)]
        >>> a, b = PopulationAnomalyModel(window_size=50), PopulationAnomalyModel(window_size=50)
        >>> b.prepare()
        >>> for x in xs:
        ...     a.learn_one(x)
        ...     b.learn_one(x)
        >>> a.score_one(xs[0]) == b.score_one(xs[0]) and a.dumps() == b.dumps()
        True
        """
        if self._trees:
            return
        self._hst.learn_one(dict.fromkeys(self.feature_names, 0.5))  # builds them (and counts it)
        self._adopt()
        for tree in self._trees:
            tree.l_mass[:] = tree.r_mass[:] = [0] * len(tree.l_mass)
        self._counter, self._first_window = 0, True

    def _fingerprint(self) -> bytes:
        """The trees' features and thresholds, hashed once: every checkpoint carries it,
        and working it out took 1.6 ms, most of a checkpoint's 2.2 ms, on the
        event loop, for each of the worker's partitions."""
        if self._tree_fingerprint is None:
            self._tree_fingerprint = self._hash_trees()
        return self._tree_fingerprint

    def _hash_trees(self) -> bytes:
        digest = hashlib.blake2b(digest_size=_FINGERPRINT_SIZE)
        branches = 2**self._hst.height - 1  # breadth first, the leaves come last
        for features, thresholds, _, _ in self._trees:
            for i in self._dfs:
                if i < branches:
                    name = self.feature_names[features[i]]
                    digest.update(f"{name}<{thresholds[i]!r};".encode())
        return digest.digest()

    def dumps(self) -> bytes:
        """Versioned checkpoint bytes (node masses only; see the module docstring)."""
        hst = self._hst
        names = [name.encode() for name in self.feature_names]
        out = bytearray(_MAGIC)
        out += _HEADER.pack(
            ANOMALY_STATE_VERSION,
            hst.n_trees,
            hst.height,
            hst.window_size,
            hst.seed,
            self.z_clip,
            self._counter,
            self._first_window,
            len(names),
        )
        for name in names:
            out += struct.pack("<B", len(name)) + name
        if not self._trees:
            return bytes(out)
        masses = array("H")
        for _, _, l_mass, r_mass in self._trees:  # in river's depth-first order
            for i in self._dfs:
                masses.append(l_mass[i])
                masses.append(r_mass[i])
        if masses.itemsize != 2:  # pragma: no cover - every CPython has a 2-byte "H"
            raise RuntimeError("array('H') is not 16 bits on this platform")
        out += self._fingerprint()
        out += zlib.compress(masses.tobytes(), 6)
        return bytes(out)

    @classmethod
    def loads(cls, raw: bytes) -> Self:
        """Rebuild a model from :meth:`dumps`; the next score equals the original's."""
        if not raw.startswith(_MAGIC):
            raise LearnedStateError("not an anomaly model checkpoint (bad magic)")
        offset = len(_MAGIC)
        try:
            version, n_trees, height, window, seed, z_clip, counter, first, n_names = (
                _HEADER.unpack_from(raw, offset)
            )
        except struct.error as exc:
            raise LearnedStateError("anomaly model checkpoint truncated") from exc
        if version != ANOMALY_STATE_VERSION:
            raise UnsupportedLearnedStateVersion(
                f"anomaly model checkpoint version {version}, this build reads "
                f"{ANOMALY_STATE_VERSION}: upgrade the worker or start a new model"
            )
        offset += _HEADER.size
        names = []
        for _ in range(n_names):
            size = raw[offset]
            names.append(raw[offset + 1 : offset + 1 + size].decode())
            offset += 1 + size
        model = cls(
            feature_names=names,
            n_trees=n_trees,
            height=height,
            window_size=window,
            z_clip=z_clip,
            seed=seed,
        )
        if offset == len(raw):
            return model
        model._hst.learn_one(dict.fromkeys(names, 0.5))  # regenerates the trees from the seed
        model._adopt()
        fingerprint = raw[offset : offset + _FINGERPRINT_SIZE]
        if fingerprint != model._fingerprint():
            raise LearnedStateError(
                "anomaly model trees regenerate differently (river's tree building "
                "changed?): start a new model, it is useful again after one window"
            )
        masses = array("H")
        try:
            masses.frombytes(zlib.decompress(raw[offset + _FINGERPRINT_SIZE :]))
        except zlib.error as exc:
            raise LearnedStateError("anomaly model masses are corrupt") from exc
        if len(masses) != 2 * len(model._trees) * len(model._dfs):
            raise LearnedStateError("anomaly model masses do not match its trees")
        k = 0
        for _, _, l_mass, r_mass in model._trees:
            for i in model._dfs:
                l_mass[i], r_mass[i] = masses[k], masses[k + 1]
                k += 2
        model._counter, model._first_window = counter, bool(first)
        return model
