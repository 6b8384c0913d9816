"""Customer segments: clustering, value-ordered ids kept across retrains, profiles and names.

- `segmenter`: the k-means estimator whose segment 1 is the most valuable.
- `matching`: stable ids across retrains (centroids matched to the promoted model's).
- `profiles`: per-segment sums and means of the raw profile features.
- `naming`: archetype names, descriptions and the report section.
"""

from ml.segments.matching import (
    MAX_MATCH_DISTANCE,
    SegmentMatch,
    SegmentReference,
    carry_names,
    centroids_in_new_space,
    match_segments,
)
from ml.segments.naming import (
    ARCHETYPES,
    SEGMENT_REPORT_COLUMNS,
    Archetype,
    describe_segments,
    name_segments,
    profile_z_scores,
    segments_markdown,
)
from ml.segments.profiles import PROFILE_FEATURES, SegmentSums
from ml.segments.segmenter import Segmenter, choose_k

__all__ = [
    "ARCHETYPES",
    "MAX_MATCH_DISTANCE",
    "PROFILE_FEATURES",
    "SEGMENT_REPORT_COLUMNS",
    "Archetype",
    "SegmentMatch",
    "SegmentReference",
    "SegmentSums",
    "Segmenter",
    "carry_names",
    "centroids_in_new_space",
    "choose_k",
    "describe_segments",
    "match_segments",
    "name_segments",
    "profile_z_scores",
    "segments_markdown",
]
