"""The Alzheimer's-stage classifier, Keras: a registered backbone (``backbones.py``: MobileNetV2, DenseNet,
ResNet50, EfficientNetB0 or a small CNN) and a dense head; config, model, training, metrics.

Importing this package registers the ``classifier`` task (``mritune.trainables.tasks``).
"""

from mritune.trainables.classifier.config import ClassifierConfig
from mritune.trainables.data.classes import CLASS_NAMES
from mritune.trainables.tasks import Task, register_task

MODEL_FILE = "model.keras"

TASK = register_task(Task(
    name="classifier",
    config_class=ClassifierConfig,
    train="mritune.trainables.classifier.training:train_classifier",
    evaluate_checkpoint="mritune.trainables.classifier.evaluation:evaluate_classifier_checkpoint",
    epoch_metrics={
        "val_macro_f1": "max", "val_weighted_f1": "max", "val_accuracy": "max", "val_auc": "max",
        "val_loss": "min", "train_loss": "min", **{f"val_f1_{name}": "max" for name in CLASS_NAMES},
    },
    search_metric="val_macro_f1",
    gate_metric="test_macro_f1",
    gate_mode="max",
    progress_metrics=("train_loss", "val_loss", "val_accuracy", "val_macro_f1"),
    model_name="mritune-classifier",
    model_files=(MODEL_FILE,),
    test_resampler="mritune.trainables.classifier.evaluation:classifier_test_resampler",
    model_logging="mritune.deploy.task_logging:CLASSIFIER",
    # train_classifier sets the loaded optimizer's learning rate; fit() takes the batch size and class weights.
    perturbable=("learning_rate", "batch_size", "class_weighting"),
))
