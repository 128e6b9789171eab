"""The DCGAN as the original describes it, in backend-neutral Keras 3 (no Lambda layers, no custom
train_step).

Generator: noise (latent_dim) → Dense → BatchNorm → LeakyReLU → reshape 8×8×(8·base_filters) → Conv2DTranspose
stack doubling the size → (S, S, 1) with tanh; with ``image_head: bilinear`` the last doubling is a bilinear
upsampling and a 3×3 convolution. Discriminator: Conv2D stack with growing filters, LeakyReLU, Dropout → Flatten →
Dense (one logit), every kernel spectrally normalized with ``spectral_norm``. ``residual`` adds a residual block
after each stage (the original's experiment). Training uses the classic pattern: a compiled discriminator plus a
combined generator→frozen discriminator model, both stepped with ``train_on_batch`` (see dcgan_training), with
the hinge loss (``loss: hinge``) or the original's binary cross-entropy (``loss: bce``).
"""

from __future__ import annotations

import math

from mritune.trainables.dcgan.config import DCGANConfig

STEM_SIZE = 8  # the generator starts from 8×8


def _init():
    import keras

    return keras.initializers.RandomNormal(stddev=0.02)  # as in Radford et al. 2016


def _residual_block(x, filters: int, *, batch_norm: bool, name: str):
    import keras

    shortcut = x
    for index in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=_init(), name=f"{name}_conv{index}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=0.8, name=f"{name}_bn{index}")(x)
        if index == 1:
            x = keras.layers.LeakyReLU(0.2, name=f"{name}_act")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.LeakyReLU(0.2, name=f"{name}_out")(x)


def build_generator(cfg: DCGANConfig):
    import keras

    stages = int(math.log2(cfg.image_size // STEM_SIZE))
    filters = cfg.base_filters * 8
    noise = keras.Input(shape=(cfg.latent_dim,), name="noise")
    x = keras.layers.Dense(STEM_SIZE * STEM_SIZE * filters, use_bias=False, kernel_initializer=_init())(noise)
    x = keras.layers.BatchNormalization(momentum=0.8)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Reshape((STEM_SIZE, STEM_SIZE, filters))(x)
    for stage in range(1, stages):
        filters = max(filters // 2, 1)
        x = keras.layers.Conv2DTranspose(
            filters, 4, strides=2, padding="same", use_bias=False, kernel_initializer=_init()
        )(x)
        x = keras.layers.BatchNormalization(momentum=0.8)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
        if cfg.residual:
            x = _residual_block(x, filters, batch_norm=True, name=f"g_res{stage}")
    # float32 output even under mixed precision: tanh images are compared against float32 real images.
    if cfg.image_head == "bilinear":
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="image_upsample")(x)
        image = keras.layers.Conv2D(
            1, 3, padding="same", activation="tanh", kernel_initializer=_init(), dtype="float32", name="image"
        )(x)
    else:
        image = keras.layers.Conv2DTranspose(
            1, 4, strides=2, padding="same", activation="tanh", kernel_initializer=_init(), dtype="float32",
            name="image",
        )(x)
    return keras.Model(noise, image, name="generator")


def build_discriminator(cfg: DCGANConfig):
    import keras

    size = cfg.image_size
    image = keras.Input(shape=(size, size, 1), name="image")
    x, filters, stage = image, cfg.base_filters, 0
    while size > 4:
        stage += 1
        x = _normalized(cfg, keras.layers.Conv2D(filters, 4, strides=2, padding="same", kernel_initializer=_init()))(x)
        x = keras.layers.LeakyReLU(0.2)(x)
        x = keras.layers.Dropout(cfg.dropout)(x)
        if cfg.residual:
            x = _residual_block(x, filters, batch_norm=False, name=f"d_res{stage}")
        size //= 2
        filters *= 2
    x = keras.layers.Flatten()(x)
    logit = _normalized(cfg, keras.layers.Dense(1, kernel_initializer=_init(), dtype="float32",
                                                name="logit_dense" if cfg.spectral_norm else "logit"), name="logit")(x)
    return keras.Model(image, logit, name="discriminator")


def _normalized(cfg: DCGANConfig, layer, *, name: str | None = None):
    """The layer, spectrally normalized with ``spectral_norm`` (the wrapper then carries ``name``)."""
    if not cfg.spectral_norm:
        return layer
    from mritune.trainables.layers import FrozenAwareSpectralNormalization

    return FrozenAwareSpectralNormalization(layer, name=name, dtype=layer.dtype_policy)


def _losses(cfg: DCGANConfig):
    """(discriminator loss, generator loss). Hinge: the discriminator's targets are +1 (real) and -1 (generated),
    Keras' Hinge; the generator maximizes the discriminator's logit on its images (``-mean(logit)``, Lim & Ye 2017).
    BCE: the original's, on logits, the same loss for both (the generator's targets are 1)."""
    import keras

    if cfg.loss == "hinge":
        return keras.losses.Hinge(), _generator_hinge_loss
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    return bce, bce


def _generator_hinge_loss(y_true, y_pred):
    import keras

    del y_true  # the generator's hinge loss has no targets
    return -keras.ops.mean(y_pred)


def compile_gan(cfg: DCGANConfig, generator, discriminator, *, generator_optimizer=None):
    """Compile the discriminator and build + compile the combined model that trains the generator.

    The discriminator is frozen inside the combined model: the trainer sets ``discriminator.trainable`` to True
    before each discriminator step and False before each generator step (Keras 3 reads the flag per variable).
    The generator is compiled with the combined model's optimizer only so that ``generator.keras`` carries that
    optimizer's state for resuming; it is never trained on its own.
    """
    import keras

    d_loss, g_loss = _losses(cfg)
    if getattr(discriminator, "optimizer", None) is None:  # a loaded discriminator keeps its optimizer
        discriminator.compile(optimizer=keras.optimizers.Adam(cfg.lr_d, beta_1=cfg.beta_1), loss=d_loss)
    optimizer = generator_optimizer or keras.optimizers.Adam(cfg.lr_g, beta_1=cfg.beta_1)
    # The generator file carries a built-in loss (deploy loads it without mritune); the combined model, never
    # saved, has the generator's real loss.
    generator.compile(optimizer=optimizer, loss=keras.losses.BinaryCrossentropy(from_logits=True))
    discriminator.trainable = False
    noise = keras.Input(shape=(cfg.latent_dim,), name="noise")
    combined = keras.Model(noise, discriminator(generator(noise)), name="gan")
    combined.compile(optimizer=optimizer, loss=g_loss)
    discriminator.trainable = True
    return combined
