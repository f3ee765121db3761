"""Training, apart from the frame path: PRNet (``python -m realtime.train``), its ground
truth from 3DMM fits, the synthetic occluders and turned (profiled) crops, and the
visibility network (``python -m realtime.train.visibility``)."""
