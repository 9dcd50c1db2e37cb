"""Everything dllint knows about PyTorch names, and every name-based guess, in one place.

Qualified names are matched by their last component and a torch-ish root, so that
`torch.nn.CrossEntropyLoss`, `torch.nn.modules.loss.CrossEntropyLoss` and an
aliased `nn.CrossEntropyLoss` are the same thing.
"""

from __future__ import annotations

import re
from typing import Optional, Set

TORCH_ROOTS = ("torch", "torchvision", "torchaudio", "torchtext")
LIGHTNING_ROOTS = ("pytorch_lightning", "lightning", "lightning.pytorch")

# Names that users commonly use without import in snippets; used only when unbound.
IMPLICIT_ALIASES = {
    "torch": "torch",
    "nn": "torch.nn",
    "F": "torch.nn.functional",
    "optim": "torch.optim",
}

MODULE_BASES = {"Module", "Sequential", "ModuleList", "ModuleDict"}
LIGHTNING_BASES = {"LightningModule"}

LOSS_CLASSES = {
    "CrossEntropyLoss": "cross_entropy",
    "NLLLoss": "nll",
    "BCEWithLogitsLoss": "bce_logits",
    "BCELoss": "bce",
    "MSELoss": "mse",
    "L1Loss": "l1",
    "SmoothL1Loss": "smooth_l1",
    "HuberLoss": "huber",
    "KLDivLoss": "kl_div",
    "CTCLoss": "ctc",
    "MarginRankingLoss": "margin_ranking",
    "HingeEmbeddingLoss": "hinge_embedding",
    "CosineEmbeddingLoss": "cosine_embedding",
    "TripletMarginLoss": "triplet",
    "MultiLabelSoftMarginLoss": "multilabel_soft_margin",
    "PoissonNLLLoss": "poisson_nll",
    "GaussianNLLLoss": "gaussian_nll",
}
FUNCTIONAL_LOSSES = {
    "cross_entropy": "cross_entropy",
    "nll_loss": "nll",
    "binary_cross_entropy_with_logits": "bce_logits",
    "binary_cross_entropy": "bce",
    "mse_loss": "mse",
    "l1_loss": "l1",
    "smooth_l1_loss": "smooth_l1",
    "huber_loss": "huber",
    "kl_div": "kl_div",
    "ctc_loss": "ctc",
}

# Activations whose output kind matters to the loss rules.
ACTIVATION_FUNCTIONS = {
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "sigmoid": "sigmoid",
    "expit": "sigmoid",
    "logsigmoid": "log_sigmoid",
}
ACTIVATION_MODULES = {
    "Softmax": "softmax",
    "Softmax2d": "softmax",
    "LogSoftmax": "log_softmax",
    "Sigmoid": "sigmoid",
    "LogSigmoid": "log_sigmoid",
}
ACTIVATION_METHODS = {"softmax": "softmax", "log_softmax": "log_softmax", "sigmoid": "sigmoid"}

# Tensor methods that keep the meaning of the values (shape or device changes only).
PASSTHROUGH_METHODS = {
    "view", "reshape", "squeeze", "unsqueeze", "flatten", "contiguous", "float", "double",
    "half", "to", "cuda", "cpu", "permute", "transpose", "type", "type_as", "view_as",
    "reshape_as", "clone", "t",
}
# Functions joining tensors into one: the result is of the kind its parts agree on.
JOINING_FUNCTIONS = {"cat", "concat", "concatenate", "stack"}
PASSTHROUGH_FUNCTIONS = {"squeeze", "unsqueeze", "flatten", "reshape", "permute", "transpose"}

DROPOUT_MODULES = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"}
BATCHNORM_MODULES = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d",
                     "LazyBatchNorm2d", "LazyBatchNorm3d"}
NORMALIZATION_MODULES = BATCHNORM_MODULES | {
    "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm",
    "RMSNorm",
}
# Modules without parameters or state: reusing one instance is harmless.
STATELESS_MODULES = DROPOUT_MODULES | {
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid",
    "Softmax", "LogSoftmax", "Softplus", "Softsign", "Hardtanh", "Hardswish", "Hardsigmoid",
    "Tanhshrink", "Softshrink", "Hardshrink", "LogSigmoid", "Identity", "Flatten", "Unflatten",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Upsample", "PixelShuffle", "PixelUnshuffle",
    "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d",
}
CONTAINER_MODULES = {"Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}

FUNCTIONAL_DROPOUTS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                       "feature_alpha_dropout"}

OPTIMIZER_CLASSES = {
    "SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "ASGD", "LBFGS", "NAdam", "RAdam",
    "RMSprop", "Rprop", "SparseAdam", "Adafactor", "ZeroRedundancyOptimizer",
}
SCHEDULER_CLASSES = {
    "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau", "OneCycleLR",
    "CyclicLR", "LambdaLR", "MultiplicativeLR", "CosineAnnealingWarmRestarts", "LinearLR",
    "ConstantLR", "PolynomialLR", "SequentialLR", "ChainedScheduler",
}
NO_GRAD_CONTEXTS = {"no_grad", "inference_mode"}
# Misspellings of `requires_grad` that Python silently accepts as new attributes.
REQUIRES_GRAD_TYPOS = {"require_grad": "requires_grad", "requires_grads": "requires_grad",
                       "requires_gradient": "requires_grad", "required_grad": "requires_grad",
                       "require_grads": "requires_grad", "requires_gradients": "requires_grad",
                       "require_grad_": "requires_grad_", "requires_grads_": "requires_grad_"}
DATALOADER_CLASSES = {"DataLoader"}
BATCH_SAMPLERS = {"BatchSampler"}
# Methods of training frameworks that hand their arguments back wrapped, in order:
# `model, optimizer = fabric.setup(model, optimizer)`, `accelerator.prepare(model, loader)`.
ARGUMENT_RETURNING_METHODS = {"setup", "prepare"}

_MODEL_NAME = re.compile(
    r"(^|_)(model|net|network|classifier|encoder|decoder|backbone|generator|discriminator|"
    r"student|teacher|policy|critic|actor|mlp|cnn|rnn|lstm|transformer|resnet|vit|"
    r"autoencoder|vae|gan|unet|bert|gpt)s?($|_|\d)|^net[A-Z]|^net\d|^(G|D)$|"
    # `trainable_module`, `ema_module`, but not a bare `module` (hooks, named_modules() loops) nor an
    # RPC `remote_emb_module`, whose forward() is its API
    r"^(?!remote)\w*[a-z]_module$",
    re.IGNORECASE,
)
_NOT_MODEL_NAME = re.compile(r"trainer|runner|engine|loader|dataset|optim|sched|criterion|loss|config|cfg|args")
_OPTIMIZER_NAME = re.compile(r"(^|_)(opt|optim|optimizer|optimiser)s?($|_|\d)|optimizer|^opt[A-Z_]", re.IGNORECASE)
_SCHEDULER_NAME = re.compile(r"sched|lr_policy|warmup", re.IGNORECASE)
_LOADER_NAME = re.compile(r"loader|batches|data_iter|dataiter|train_data|dataset|^ds$|_ds$|^dl$|_dl$|batch_iter",
                          re.IGNORECASE)
_EVAL_FUNCTION_NAME = re.compile(r"^_*(eval|evaluate|evaluation|valid|validate|validation|val|test|predict|"
                                 r"prediction|infer|inference)(_|$)|_(eval|evaluate|validate|validation|val|test|"
                                 r"predict|infer|inference)$", re.IGNORECASE)
_TRAIN_LOADER_NAME = re.compile(r"train", re.IGNORECASE)


def last_component(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def is_torch_name(qualified: Optional[str]) -> bool:
    return bool(qualified) and qualified.split(".", 1)[0] in TORCH_ROOTS


def torch_member(qualified: Optional[str], names) -> Optional[str]:
    """The last component of a torch qualified name when it is one of `names`."""
    if not qualified or not is_torch_name(qualified):
        return None
    last = last_component(qualified)
    return last if last in names else None


def is_module_base(qualified: Optional[str]) -> bool:
    if not qualified:
        return False
    last = last_component(qualified)
    if last in MODULE_BASES and is_torch_name(qualified):
        return True
    return last in LIGHTNING_BASES


def is_lightning_base(qualified: Optional[str]) -> bool:
    return bool(qualified) and last_component(qualified) in LIGHTNING_BASES


def looks_like_model(text: Optional[str]) -> bool:
    """Guess from a variable's name (`model`, `self.net`, `netG`) that it holds an nn.Module."""
    if not text:
        return False
    name = text.rsplit(".", 1)[-1]
    if text == "self":
        return True
    return bool(_MODEL_NAME.search(name)) and not _NOT_MODEL_NAME.search(name.lower())


# First words of function and method names: `load_model`, `unwrap_model`, `scale_model_input` do
# something to or with a model; they are not one.
_VERB_NAME = re.compile(r"^_*(get|load|build|create|make|init|initialize|save|prepare|setup|set|scale|unwrap|wrap|"
                        r"compile|export|convert|freeze|unfreeze|update|apply|run|compute|register|print|log|"
                        r"copy|clone|to|evaluate|validate|test|train|fit|predict|sample|reset|step|add|remove|"
                        r"replace|patch|enable|disable|check|is|has|fuse|quantize|merge|resize|average)_",
                        re.IGNORECASE)


def looks_like_model_call(text: Optional[str]) -> bool:
    """Guess from a callee's text (`model(x)`, `self.netG(z)`) that calling it runs a model; a
    verb-first name (`self.scheduler.scale_model_input(x)`, `load_model(path)`) is a function."""
    if not text:
        return False
    return looks_like_model(text) and not _VERB_NAME.search(text.rsplit(".", 1)[-1])


def looks_like_optimizer(text: Optional[str]) -> bool:
    if not text:
        return False
    name = text.rsplit(".", 1)[-1]
    return bool(_OPTIMIZER_NAME.search(name)) and not _SCHEDULER_NAME.search(name)


def looks_like_scheduler(text: Optional[str]) -> bool:
    return bool(text) and bool(_SCHEDULER_NAME.search(text.rsplit(".", 1)[-1]))


def looks_like_loader(text: Optional[str]) -> bool:
    return bool(text) and bool(_LOADER_NAME.search(text.rsplit(".", 1)[-1]))


def looks_like_train_loader(text: Optional[str]) -> bool:
    return looks_like_loader(text) and bool(_TRAIN_LOADER_NAME.search(text or ""))


_HELD_OUT_MARKERS = ("val", "valid", "test", "eval", "dev", "holdout", "infer", "predict", "gallery", "query",
                     "calib", "reference")
# Datasets named as generated samples (RandomDataset, FakeData): every sample is drawn independently,
# so their order carries nothing a shuffle would remove.
_SYNTHETIC_MARKERS = {"random", "fake", "dummy", "synthetic", "boring"}


def names_held_out_data(name: str) -> bool:
    """`val_loader`, `testset`, `validation_data`, but not `device` (dev) or `latest` (test)."""
    for token in re.split(r"[^a-z]+", name):
        for marker in _HELD_OUT_MARKERS:
            if token == marker or (len(marker) >= 4 and token.startswith(marker)):
                return True
    return False


def name_words(name: Optional[str]) -> Set[str]:
    """`RandomDictDataset` -> {"random", "dict", "dataset"}; `self.random_train` -> {"self", "random", "train"}."""
    return {word.lower() for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name or "")}


def names_synthetic_data(name: Optional[str]) -> bool:
    """`self.random_train`, `RandomDataset`, `FakeData`: generated samples."""
    return bool(_SYNTHETIC_MARKERS & name_words(name))


def is_eval_function_name(name: str) -> bool:
    return bool(_EVAL_FUNCTION_NAME.search(name))


# Data named for evaluation (`val_loader`, `test_dl`, `eval_dataset`, `valloader`).
_EVAL_DATA_NAME = re.compile(r"(^|_)(val|valid|validation|test|testing|eval|evaluation|holdout|dev)", re.IGNORECASE)
# Calls named for a metric of predictions (`accuracy(logits, y)`, `metric.update`, `compute_f1`).
_METRIC_NAME = re.compile(r"accuracy|metric|score|f1|auc|precision|recall|iou|psnr|ssim|bleu|perplexity|error",
                          re.IGNORECASE)


# torch objects that are never modules: kept as attributes of a module, they hold no dropout or batch-norm.
NON_MODULE_TORCH_PREFIXES = ("torch.optim.", "torch.tensor", "torch.zeros", "torch.ones", "torch.randn", "torch.rand",
                             "torch.empty", "torch.full", "torch.arange", "torch.linspace", "torch.distributions.",
                             "torch.cuda.amp.", "torch.amp.", "torch.Generator", "torch.device")


def looks_like_eval_data(text: Optional[str]) -> bool:
    return bool(text) and bool(_EVAL_DATA_NAME.search(text.rsplit(".", 1)[-1]))


def looks_like_metric(text: Optional[str]) -> bool:
    return bool(text) and bool(_METRIC_NAME.search(text.rsplit(".", 1)[-1]))


# Calls that return the module they are given, in the same mode: parallel and compile wrappers,
# unwrapping helpers, device and dtype moves.
SAME_MODULE_CALLS = ("DataParallel", "DistributedDataParallel", "DDP", "compile", "FullyShardedDataParallel",
                     "FSDP", "unwrap_model", "unwrap", "prepare_model", "to", "cuda", "cpu", "float", "double",
                     "half", "bfloat16", "requires_grad_")
# Attributes under which a wrapper keeps the module it wraps.
WRAPPED_MODULE_ATTRIBUTES = ("module", "_orig_mod", "_forward_module")

# Schedulers that expect one step per epoch (CosineAnnealingLR depends on how T_max is sized).
EPOCH_SCHEDULERS = {"StepLR", "MultiStepLR", "ExponentialLR", "ReduceLROnPlateau", "CosineAnnealingLR"}
DISTRIBUTED_SAMPLERS = {"DistributedSampler", "ElasticDistributedSampler"}
TENSOR_FACTORIES = {"randn", "rand", "zeros", "ones", "empty", "tensor", "full", "eye", "normal", "randn_like",
                    "rand_like", "zeros_like", "ones_like", "empty_like", "full_like", "FloatTensor", "Tensor",
                    "as_tensor", "linspace", "arange", "randint"}
PARAMETER_CLASSES = {"Parameter", "UninitializedParameter"}
# Operations whose result carries no gradient back to their input.
GRADIENT_BARRIER_METHODS = {"detach", "detach_", "item", "tolist", "numpy", "argmax", "argmin", "round",
                            "long", "int", "bool", "sign"}
GRADIENT_BARRIER_FUNCTIONS = {"tensor", "as_tensor", "from_numpy", "argmax", "argmin", "round", "sign"}
WEIGHT_NAME = re.compile(r"(^|_)(weight|weights|bias|kernel|embedding|embeddings|w|b|W)(_|$|\d)")
DYNAMIC_MODULE_ACCESS = {"children", "modules", "named_children", "named_modules", "_modules", "__dict__",
                         "apply"}


# ---------------------------------------------------------------- names the checks match
# (Every name a check looks for lives here, so that a check reads as the evidence it needs.)

# Training loops.
# How a scheduler's length is sized: in steps/iterations (stepped per batch on purpose) or in epochs.
PER_STEP_SIZING_NAME = re.compile(r"step|iter|len\(|batch|total", re.IGNORECASE)
# Sized in iterations, for schedulers whose own argument names say "step" (StepLR(step_size=...)).
ITERATION_SIZING_NAME = re.compile(r"iter|len\(|batch|total_steps|num_steps|max_steps|steps_per", re.IGNORECASE)
# The argument that says how long the schedule is, and in which unit.
SCHEDULER_HORIZON_ARGUMENTS = {"CosineAnnealingLR": "T_max", "StepLR": "step_size", "MultiStepLR": "milestones"}
# Optimizer attributes and methods that neither step nor need gradients (an optimizer only touched
# through these was never stepped).
OPTIMIZER_BOOKKEEPING = {"zero_grad", "param_groups", "state_dict", "load_state_dict", "add_param_group", "defaults"}
# Gradients written by hand (`p.grad = g` after torch.autograd.grad, meta-learning) replace backward().
MANUAL_GRADIENT_WRITE = re.compile(r"\.grad\s*=[^=]|\.grad\.(copy_|add_|set_)|\.grad\.data\s*=|autograd\.grad\(")
# Functions that reset a global random generator (qualified names, after import resolution).
SEED_FUNCTIONS = {
    "torch.manual_seed", "torch.random.manual_seed", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all",
    "numpy.random.seed", "random.seed", "pytorch_lightning.seed_everything", "lightning.seed_everything",
    "lightning.pytorch.seed_everything", "lightning_fabric.seed_everything", "transformers.set_seed",
    "accelerate.utils.set_seed",
}
# Calls that keep a seed constant when their argument is: int(args.seed).
CONSTANT_PRESERVING_BUILTINS = {"int", "abs", "hash", "str"}
# Attributes that count iterations: a guard reading them changes with the loop.
LOOP_COUNTER_NAME = re.compile(r"epoch|step|iter|batch|idx|index|count|round")

# Losses and activations.
STABLE_LOG_REPLACEMENTS = {"softmax": "log_softmax", "sigmoid": "F.logsigmoid"}
# A hand-written softmax that subtracts one of these first cannot overflow.
MAX_SHIFT_FUNCTIONS = {"max", "amax", "logsumexp"}
SOFTMAX_FUNCTIONS = {"softmax", "log_softmax", "softmin"}
SOFTMAX_MODULES = {"Softmax", "LogSoftmax", "Softmin"}
# Loss kinds (the values of LOSS_CLASSES / FUNCTIONAL_LOSSES) that read classes along dim 1.
CLASS_LOSS_KINDS = ("cross_entropy", "nll", "kl_div")
REGRESSION_LOSS_KINDS = ("mse", "l1", "smooth_l1", "huber")
# Methods a trainer or Lightning calls once per batch.
BATCH_STEP_METHODS = ("training_step", "validation_step", "test_step", "train_step", "eval_step")
# Factories whose shape is their size arguments, conversions that keep a shape, methods that keep it.
SHAPED_TENSOR_FACTORIES = {"randn", "rand", "zeros", "ones", "empty"}
TENSOR_CONVERSIONS = {"tensor", "as_tensor", "from_numpy", "FloatTensor", "Tensor"}
SHAPE_KEEPING_METHODS = {"float", "double", "half", "to", "cuda", "cpu", "contiguous", "detach", "clone"}

# Train and eval modes.
LIGHTNING_EVAL_HOOK_PREFIXES = ("on_validation_", "on_test_", "on_predict_")
# alpha_dropout and feature_alpha_dropout default to training=False: without the flag they never apply.
DROPOUTS_OFF_BY_DEFAULT = {"alpha_dropout", "feature_alpha_dropout"}

# Gradients.
# Functions whose input is commonly kept off zero with a tiny clamp (log(clamp(p, min=eps))).
EPS_GUARDED_FUNCTIONS = {"log", "log2", "log10", "sqrt", "rsqrt", "reciprocal"}
# A round trip out of torch and back, through which no gradient flows and which nobody uses to freeze
# on purpose (that is spelled .detach() or torch.no_grad()).
ROUND_TRIP_METHODS = {"numpy", "tolist"}
ROUND_TRIP_FUNCTIONS = {"tensor", "as_tensor", "from_numpy", "Tensor", "FloatTensor", "LongTensor"}
PARAMETER_ITERATORS = {"parameters", "named_parameters"}

# Modules.
# Methods that store an attribute in nn.Module's registries (so need Module.__init__ to have run), and
# those of them that register something trainable.
REGISTERING_METHODS = ("add_module", "register_module", "register_buffer", "register_parameter")
TRAINABLE_REGISTERING_METHODS = ("add_module", "register_module", "register_parameter")
LAYER_SEQUENCE_CONTAINERS = {"Sequential", "ModuleList"}
# Methods, by name, that re-initialize a module's weights.
INIT_METHODS = {"reset_parameters", "_reset_parameters", "init_weights", "_init_weights", "initialize_weights",
                "_initialize_weights", "weights_init", "init_parameters", "_init_parameters"}
# A project helper that loads weights: load_checkpoint, load_pretrained, load_model_weights.
LOAD_HELPER_NAME = re.compile(r"load.*(checkpoint|ckpt|pretrained|weights|state|model)", re.IGNORECASE)
WEIGHT_ITERATORS = PARAMETER_ITERATORS | {"modules", "named_modules"}
RESHAPE_METHODS = ("view", "reshape")
# Nonlinearities as modules and as calls (F.relu, torch.tanh, x.sigmoid()).
NONLINEARITY_MODULES = {"ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid",
                        "Softplus", "Softsign", "Hardtanh", "Hardswish", "Hardsigmoid", "LogSigmoid"}
NONLINEARITY_CALLS = {name.lower() for name in NONLINEARITY_MODULES} | {"leaky_relu", "relu_", "relu6", "log_sigmoid"}

# Data: DataLoader arguments and the words of dataset, loader and transform names.
# A DataLoader given any of these chose its order.
LOADER_ORDER_ARGUMENTS = {"shuffle", "sampler", "batch_sampler"}
# Iterable-style datasets cannot be shuffled by the DataLoader (shuffle=True raises).
ITERABLE_DATASET_WORDS = ("iter", "stream", "pipe", "webdataset", "wds")
# torchvision's random transforms whose names do not start with Random.
RANDOM_TORCHVISION_TRANSFORMS = {"ColorJitter", "AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix",
                                 "ElasticTransform"}
# albumentations transforms that fire with probability p (0.5 by default) and are not geometry-neutral.
RANDOM_ALBUMENTATIONS_TRANSFORMS = {
    "HorizontalFlip", "VerticalFlip", "Flip", "Transpose", "ShiftScaleRotate", "Rotate", "Affine", "ColorJitter",
    "HueSaturationValue", "RGBShift", "GaussNoise", "CoarseDropout", "Blur", "MotionBlur", "GaussianBlur",
    "GridDistortion", "ElasticTransform", "OpticalDistortion", "CLAHE", "ChannelShuffle", "ToGray", "Perspective",
}
# Words of a held-out pipeline or dataset name (where augmentation is out of place), and the narrower
# words of a held-out split whose preprocessing must match training's.
HELD_OUT_WORDS = {"val", "valid", "validation", "test", "testing", "eval", "evaluation", "evaluate", "inference",
                  "infer", "predict", "prediction", "holdout", "dev"}
HELD_OUT_SPLIT_WORDS = {"val", "valid", "validation", "test", "testing", "eval", "evaluation", "inference", "infer",
                        "predict", "holdout"}
TRAINING_WORDS = {"train", "training"}
# Names that say the augmentation is wanted: test-time augmentation, views for self-supervision.
TTA_WORDS = {"tta", "views", "crops", "multicrop"}
AUGMENTING_WORDS = TTA_WORDS | TRAINING_WORDS | {"aug", "augment", "augmentation", "augmentations", "augs"}
