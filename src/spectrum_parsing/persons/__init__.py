"""Person instances for top-down parsing: detectors (MoveNet-MultiPose, BlazePose, fixed boxes), BlazePose person
masks, and the TF.js graph port they run on."""

from .blazepose import BlazePoseDetector, BlazePoseSegmenter
from .movenet import MoveNetDetector, accept_people
from .tfgraph import TFGraphModule, load_graph_model, read_tfjs_graph, save_graph_model
from .types import KEYPOINT_NAMES, BoxDetector, PersonDetections, PersonDetector, box_iou

__all__ = [
    "KEYPOINT_NAMES",
    "BlazePoseDetector",
    "BlazePoseSegmenter",
    "BoxDetector",
    "MoveNetDetector",
    "PersonDetections",
    "PersonDetector",
    "TFGraphModule",
    "accept_people",
    "box_iou",
    "load_graph_model",
    "read_tfjs_graph",
    "save_graph_model",
]
