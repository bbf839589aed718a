"""Person instances for top-down parsing: detectors (MoveNet-MultiPose, BlazePose, fixed boxes, several merged),
BlazePose person masks, people hidden behind the found ones (peeling), and the TF.js graph port they run on."""

from .blazepose import BlazePoseDetector, BlazePoseSegmenter
from .merged import MergedDetector
from .movenet import MoveNetDetector, accept_people
from .peeling import hidden_people
from .tfgraph import TFGraphModule, load_graph_model, read_tfjs_graph, save_graph_model
from .types import KEYPOINT_NAMES, BoxDetector, PersonDetections, PersonDetector, box_iou, nms_oks, oks

__all__ = [
    "KEYPOINT_NAMES",
    "BlazePoseDetector",
    "BlazePoseSegmenter",
    "BoxDetector",
    "MergedDetector",
    "MoveNetDetector",
    "PersonDetections",
    "PersonDetector",
    "TFGraphModule",
    "accept_people",
    "box_iou",
    "hidden_people",
    "load_graph_model",
    "nms_oks",
    "oks",
    "read_tfjs_graph",
    "save_graph_model",
]
