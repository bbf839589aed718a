"""Person instances for top-down parsing: detectors (MoveNet-MultiPose, BlazePose, fixed boxes), BlazePose person
masks, and the TF.js graph port they run on."""

from .blazepose import BlazePoseDetector
from .detection import (
    KEYPOINT_NAMES,
    BlazePoseSegmenter,
    BoxDetector,
    MoveNetDetector,
    PersonDetections,
    PersonDetector,
    box_iou,
)
from .tfgraph import TFGraphModule, load_graph_model, read_tfjs_graph, save_graph_model

__all__ = [
    "KEYPOINT_NAMES",
    "BlazePoseDetector",
    "BlazePoseSegmenter",
    "BoxDetector",
    "MoveNetDetector",
    "PersonDetections",
    "PersonDetector",
    "TFGraphModule",
    "box_iou",
    "load_graph_model",
    "read_tfjs_graph",
    "save_graph_model",
]
