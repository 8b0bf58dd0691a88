"""Data preprocessors: ``DeviceAugmentDataPreprocessor`` crops, resizes and
flips training batches on the model's device (what ``FuseOnDevice``
recorded in the workers), then normalises as ``ActionDataPreprocessor``."""
