"""Training code for the effyolo detector (used by ``train.py`` and ``export_best.py``).

Modules:
    data    -- images decoded once into RAM, YOLOv5-style augmentation, deterministic batches
    teacher -- dense outputs of the yolov5n teacher (onnxruntime) on an augmented batch
    loss    -- YOLOv5 v7.0 box/objectness/class loss and the dense distillation loss
    engine  -- optimiser groups, learning-rate schedule, EMA, checkpoints
"""
