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
from typing import Any, Self

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

    __slots__ = ("_hst", "feature_names", "z_clip")

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
        self._hst: Any = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )

    def features(self, zscores: Mapping[str, float | None]) -> dict[str, float]:
        """The HST input: known z-scores clipped and mapped to ``[0, 1]``.

        >>> PopulationAnomalyModel(z_clip=5.0).features({"heart_rate": 2.5, "spo2": -9.0})
        {'heart_rate': 0.75, 'spo2': 0.0}
        """
        c = self.z_clip
        return {
            name: (min(max(z, -c), c) + c) / (2 * c)
            for name in self.feature_names
            if (z := zscores.get(name)) is not None
        }

    def score_one(self, zscores: Mapping[str, float | None]) -> float:
        """Anomaly score in ``[0, 1]``, higher is more unusual; 0 during the first window."""
        return float(self._hst.score_one(self.features(zscores)))

    def learn_one(self, zscores: Mapping[str, float | None]) -> None:
        """Add one vitals set to the current window."""
        x = self.features(zscores)
        if not self._hst.trees:  # the first vector fixes the trees' features: give them all
            x = {name: x.get(name, 0.5) for name in self.feature_names}
        self._hst.learn_one(x)

    def score_and_learn_one(self, zscores: Mapping[str, float | None]) -> float:
        """:meth:`score_one` then :meth:`learn_one`, in one walk of each tree.

        River walks every tree twice for the two (scoring stops early where the
        mass is small, learning goes to the leaf); the paths are the same, since
        a walk compares the masses of children it has not yet counted. Scores,
        masses and window pivots are exactly those of the two calls.

        >>> import random
        >>> rng = random.Random(5)
        >>> a, b = PopulationAnomalyModel(window_size=40), PopulationAnomalyModel(window_size=40)
        >>> a.prepare()
        >>> b.prepare()
        >>> xs = [{n: rng.gauss(0, 1) for n in VITAL_NAMES[: 2 + i % 5]} for i in range(200)]
        >>> fused = [a.score_and_learn_one(x) for x in xs]
        >>> twice = []
        >>> for x in xs:
        ...     twice.append(b.score_one(x))
        ...     b.learn_one(x)
        >>> fused == twice and a.dumps() == b.dumps()
        True
        """
        hst = self._hst
        if not hst.trees:  # the first vector builds the trees (see learn_one)
            score = self.score_one(zscores)
            self.learn_one(zscores)
            return score
        x = self.features(zscores)
        scoring = not hst._first_window
        height = hst.height
        size_limit = 0.1 * hst.window_size
        total = 0.0
        for node in hst.trees:
            # river.anomaly.hst._walk_score and _walk_learn, fused.
            depth_pow = 1
            score = 0.0
            open_ = scoring
            for _ in range(height):
                if open_:
                    r = node.r_mass
                    score += r * depth_pow
                    if r < size_limit:
                        open_ = False
                node.l_mass += 1
                c = node.children
                value = x.get(node.feature)
                if value is None:
                    node = c[1] if c[0].l_mass < c[1].l_mass else c[0]
                else:
                    node = c[0] if value < node.threshold else c[1]
                depth_pow <<= 1
            if open_:
                score += node.r_mass * depth_pow
            node.l_mass += 1
            total += score
        hst.counter += 1
        if hst.counter == hst.window_size:
            for nodes in hst._tree_nodes:
                for n in nodes:
                    n.r_mass = n.l_mass
                    n.l_mass = 0
            hst._first_window = False
            hst.counter = 0
        return float(1 - total / hst._max_score) if scoring else 0.0

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
        hst = self._hst
        if hst.trees:
            return
        hst.learn_one(dict.fromkeys(self.feature_names, 0.5))  # builds them (and counts it)
        for tree in hst._tree_nodes:
            for node in tree:
                node.l_mass = node.r_mass = 0
        hst.counter, hst._first_window = 0, True

    def _fingerprint(self) -> bytes:
        digest = hashlib.blake2b(digest_size=_FINGERPRINT_SIZE)
        for nodes in self._hst._tree_nodes:
            for node in nodes:
                if hasattr(node, "threshold"):
                    digest.update(f"{node.feature}<{node.threshold!r};".encode())
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
            hst.counter,
            bool(hst._first_window),
            len(names),
        )
        for name in names:
            out += struct.pack("<B", len(name)) + name
        if not hst.trees:
            return bytes(out)
        masses = array("H")
        for nodes in hst._tree_nodes:
            for node in nodes:
                masses.append(node.l_mass)
                masses.append(node.r_mass)
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
        hst = model._hst
        hst.learn_one(dict.fromkeys(names, 0.5))  # regenerates the trees from the seed
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
        nodes = [node for tree in hst._tree_nodes for node in tree]
        if len(masses) != 2 * len(nodes):
            raise LearnedStateError("anomaly model masses do not match its trees")
        for i, node in enumerate(nodes):
            node.l_mass, node.r_mass = masses[2 * i], masses[2 * i + 1]
        hst.counter, hst._first_window = counter, bool(first)
        return model
