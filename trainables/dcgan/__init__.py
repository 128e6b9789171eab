"""The DCGAN of 128×128 grayscale MRI slices (Keras): config, models, training, and the SWD/MS-SSIM metrics.

Importing this package registers the ``dcgan`` task (``mritune.trainables.tasks``).
"""

from mritune.trainables.dcgan.config import DCGANConfig
from mritune.trainables.tasks import Task, register_task

GENERATOR_FILE = "generator.keras"
DISCRIMINATOR_FILE = "discriminator.keras"

TASK = register_task(Task(
    name="dcgan",
    config_class=DCGANConfig,
    train="mritune.trainables.dcgan.training:train_dcgan",
    evaluate_checkpoint="mritune.trainables.dcgan.evaluation:evaluate_generator_checkpoint",
    # Lower is better for the image metrics (SWD; MS-SSIM between generated pairs, near 1 at mode collapse) and
    # the losses; the discriminator's accuracies are listed as it sees them (higher: it tells real from fake).
    epoch_metrics={
        "swd": "min", "ms_ssim_diversity": "min", "gen_loss": "min", "disc_loss": "min",
        "d_real_acc": "max", "d_fake_acc": "max",
    },
    search_metric="swd",
    gate_metric="test_swd",
    gate_mode="min",
    progress_metrics=("gen_loss", "disc_loss", "swd", "ms_ssim_diversity"),
    model_name="mritune-dcgan",
    model_files=(GENERATOR_FILE, DISCRIMINATOR_FILE),
    test_resampler="mritune.trainables.dcgan.evaluation:generator_test_resampler",
    model_logging="mritune.deploy.task_logging:GENERATOR",
    # train_dcgan sets both loaded optimizers' learning rates; every epoch reads the other three from the config.
    perturbable=("lr_g", "lr_d", "batch_size", "label_smoothing", "d_steps"),
))
