"""PRNet Live: real-time 3D face reconstruction; importing it quiets FFmpeg/OpenCV logging."""

import os

# Before cv2 loads anywhere: FFmpeg/OpenCV chatter ("moov atom not found", V4L2
# warnings) would bury the one-line messages the app prints for bad input.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
