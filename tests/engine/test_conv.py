"""Convolutional FF with channel-wise competition (engine/conv.py): the class goodness and both losses
against hand-computed values, CFSE groups, locality of the layer losses, option refusals, and a small
real-data run above a floor that reloads from its checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from ff_mcp.cli import main as cli_main
from ff_mcp.data import load_dataset
from ff_mcp.engine import DataSpec, OptimizerConfig, TrainConfig, Trainer, build_model, load_checkpoint
from ff_mcp.engine.conv import (ConvConfig, ConvNet, ConvOptions, class_goodness, cwc_loss, ff_loss, image_goodness,
                                 pvn_loss, rms_normalise)


def test_class_goodness_is_the_mean_square_of_each_contiguous_channel_block():
    h = torch.zeros(1, 4, 2, 2)
    h[0, 0] = 1.0  # class 0: channels 0, 1 -> mean of squares (4 ones, 4 zeros) = 0.5
    h[0, 3, 0, 0] = 2.0  # class 1: channels 2, 3 -> (4 + 4) / 8 = 1.0
    h[0, 2, 1, 1] = -2.0
    assert class_goodness(h, 2).tolist() == [[0.5, 1.0]]


def test_cwc_is_softmax_cross_entropy_over_goodness_and_pvn_the_ff_softplus_pair():
    g = torch.tensor([[1.0, 3.0, 0.5], [2.0, 0.0, 1.0]])
    y = torch.tensor([1, 0])
    row0 = -math.log(math.exp(3.0) / (math.exp(1.0) + math.exp(3.0) + math.exp(0.5)))
    row1 = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.0) + math.exp(1.0)))
    assert cwc_loss(g, y).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    # true goodness 3 and 2; the wrong classes' mean (1 + 0.5) / 2 = 0.75 and (0 + 1) / 2 = 0.5; threshold 2
    expected = (softplus(2 - 3.0) + softplus(2 - 2.0) + softplus(0.75 - 2) + softplus(0.5 - 2)) / 4
    assert pvn_loss(g, y).item() == pytest.approx(expected, rel=1e-6)


def tiny(cfse: bool = True) -> ConvNet:
    config = ConvConfig(in_features=2 * 6 * 6, num_classes=2, image_shape=(2, 6, 6), channels=(4, 4, 6), pool=(1,),
                        cfse=cfse)
    return ConvNet(config, generator=torch.Generator().manual_seed(0))


def test_cfse_layers_see_only_their_own_class_channels_below():
    net = tiny()
    second = net.layers[1].conv
    assert second.groups == 2 and net.layers[0].conv.groups == 1 and net.layers[2].conv.groups == 1
    x = torch.randn(3, 4, 6, 6)
    changed = x.clone()
    changed[:, 2:] += 1.0  # class 1's channels of the layer below
    out, out_changed = second(x), second(changed)
    assert torch.equal(out[:, :2], out_changed[:, :2])  # class 0's outputs do not move
    assert not torch.allclose(out[:, 2:], out_changed[:, 2:])
    assert tiny(cfse=False).layers[1].conv.groups == 1


def test_each_layers_loss_reaches_only_its_own_weights():
    net = tiny()
    x, y = torch.rand(5, 72), torch.tensor([0, 1, 1, 0, 1])
    for i in range(3):
        net.zero_grad(set_to_none=True)
        outs = net.layer_outputs(x)
        cwc_loss(class_goodness(outs[i], 2), y).backward()
        for j, layer in enumerate(net.layers):
            grads = [p.grad for p in layer.parameters()]
            assert all((g is not None) if j == i else (g is None) for g in grads), (i, j)


def test_images_are_standardised_per_channel_with_the_training_rows_statistics():
    data = load_dataset("digits")
    config = ConvNet.build_config(DataSpec(64, 10, (8, 8)), (10, 20), ConvOptions(pool="1"))
    net = build_model(config, seed=0)
    Trainer(net, TrainConfig(epochs=1, batch_size=128, device="cpu")).fit(data.x_train[:256], data.y_train[:256])
    assert bool(net.fitted)
    assert net.mean.item() == pytest.approx(data.x_train[:256].mean().item(), rel=1e-4)
    assert net.std.item() == pytest.approx(data.x_train[:256].std().item(), rel=1e-4)


@pytest.mark.parametrize(("args", "message"), [
    (["--hidden", "16,16"], "every conv layer's channels must be a multiple of the 10 classes"),
    (["--hidden", "20,20", "--opt", "pool=0,1,2"], "pool must name distinct layers in [0, 2)"),
    (["--hidden", "20,20", "--opt", "loss=hinge"], "loss must be one of ['cwc', 'pvn', 'ff', 'distance']"),
    (["--hidden", "20,20", "--opt", "collaborate=true"], "collaborate: only loss 'distance' uses it"),
    (["--hidden", "20,20", "--opt", "loss=distance", "--opt", "scale=0"], "scale must be in (0, 10000], got 0.0"),
    (["--hidden", "20,20", "--opt", "loss=distance", "--opt", "momentum=1"], "momentum must be in [0, 1), got 1.0"),
    (["--hidden", "20,20", "--opt", "loss=distance", "--opt", "method=bp"], "loss: method 'bp' trains the layers"),
    (["--hidden", "20,20", "--opt", "layer_epochs=1"], "layer_epochs needs one count >= 1 per layer (2)"),
    (["--hidden", "20,20", "--opt", "layer_epochs=1,5", "--epochs", "3"], "give --epochs >= 5"),
    (["--hidden", "20,20", "--negatives", "hard"], "variant 'conv' uses no negative data"),
    (["--hidden", "20,20", "--opt", "loss=ff", "--negatives", "hard"],
     "variant 'conv' with loss 'ff' draws wrong labels uniformly (wrong_label)"),
    (["--hidden", "20,20", "--opt", "loss=ff", "--opt", "method=bp"], "loss: method 'bp' trains the layers with"),
    (["--hidden", "16,16", "--opt", "loss=ff"], "every conv layer's channels must be a multiple of the 10 classes"),
])
def test_options_out_of_range_are_refused_naming_the_option(args, message, capsys):
    assert cli_main(["train", "--dataset", "digits", "--variant", "conv", "--epochs", "1", "--quiet",
                     "--device", "cpu", *args]) == 2
    assert message in capsys.readouterr().err


def test_rows_without_an_image_shape_are_refused(capsys):
    assert cli_main(["train", "--dataset", "mnist1d", "--variant", "conv", "--hidden", "20", "--epochs", "1",
                     "--quiet", "--device", "cpu"]) == 2
    assert "variant 'conv' trains on images" in capsys.readouterr().err


def test_conv_ff_learns_digits_and_reloads_from_its_checkpoint(tmp_path):
    data = load_dataset("digits")
    out = tmp_path / "conv.safetensors"
    assert cli_main(["train", "--dataset", "digits", "--variant", "conv", "--hidden", "20,40",
                     "--epochs", "8", "--batch-size", "64", "--lr", "0.01", "--device", "cpu", "--quiet",
                     "--out", str(out)]) == 0
    saved = load_checkpoint(out)
    final = saved.metrics["final"]
    assert saved.kind == "conv" and final["predict_method"] == "goodness"
    assert final["test_accuracy"] > 0.80 and final["test_accuracy_readout"] > 0.85  # chance is 0.10
    assert "test_accuracy_layer1" in final
    again = build_model(saved.model.config, seed=0)
    again.load_state_dict(saved.model.state_dict())
    again.eval()
    with torch.no_grad():
        assert torch.equal(again.predict(data.x_test), saved.model.eval().predict(data.x_test))
    layers = saved.model.layer_goodness(data.x_test[:4], torch.tensor([0, 1, 2, 3]))
    assert len(layers) == 2 and layers[1]["goodness"].shape == (4,)


def test_the_same_seed_trains_the_same_weights():
    data = load_dataset("digits")
    config = ConvNet.build_config(DataSpec(64, 10, (8, 8)), (10, 20), ConvOptions(pool="1", layer_epochs="1,2"))
    train = TrainConfig(epochs=2, batch_size=64, seed=5, device="cpu", optimizer=OptimizerConfig("adam", 1e-2))
    nets = [build_model(config, seed=5) for _ in range(2)]
    first_layer = {k: v.clone() for k, v in nets[0].layers[0].state_dict().items()}
    for net in nets:
        Trainer(net, train).fit(data.x_train[:256], data.y_train[:256])
    assert all(torch.equal(a, b) for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()))
    assert not torch.equal(first_layer["conv.weight"], nets[0].layers[0].conv.weight)


@pytest.mark.anyio
async def test_mcp_trains_a_conv_model_on_rows_with_an_image_shape_and_predicts(tmp_path, small_server):
    from mcp import Client

    data = load_dataset("digits")
    x, y = data.x_train[:1000].tolist(), data.y_train[:1000].tolist()
    async with Client(small_server) as client:
        wrong = await client.call_tool("ff_train", {"name": "c", "x": x, "y": y, "variant": "conv",
                                                    "image_shape": [1, 8, 7], "hidden": [20, 40]})
        assert wrong.is_error and "image_shape [1, 8, 7] holds 56 values but each row of x has 64" in (
            wrong.content[0].text)
        both = await client.call_tool("ff_train", {"name": "c", "dataset": "digits", "image_shape": [8, 8]})
        assert both.is_error and "image_shape: only rows given as x" in both.content[0].text
        flat = await client.call_tool("ff_train", {"name": "c", "x": x, "y": y, "variant": "conv", "hidden": [20]})
        assert flat.is_error and "variant 'conv' trains on images" in flat.content[0].text
        res = await client.call_tool("ff_train", {
            "name": "c", "x": x, "y": y, "variant": "conv", "image_shape": [1, 8, 8], "hidden": [20, 40],
            "epochs": 8, "batch_size": 64, "lr": 0.01, "wait_seconds": 100})
        assert not res.is_error, res.content[0].text
        job = res.structured_content
        assert job["state"] == "done" and job["metrics"]["test_accuracy"] >= 0.6, job  # held-out rows; chance 0.1
        rows = data.x_test[:30]
        pred = await client.call_tool("ff_predict", {"model": "c", "x": rows.tolist(), "method": "readout"})
        assert not pred.is_error, pred.content[0].text
        model = load_checkpoint(tmp_path / "home" / "models" / "c.safetensors").model.eval()
        with torch.no_grad():
            assert pred.structured_content["labels"] == model.predict(rows, "readout").tolist()
        good = (await client.call_tool("ff_goodness", {"model": "c", "x": rows[:2].tolist()})).structured_content
        assert len(good["layers"]) == 2 and len(good["layers"][0]["goodness"]) == 2


def test_method_bp_trains_the_same_layers_end_to_end_as_the_baseline():
    data = load_dataset("digits")
    config = ConvNet.build_config(DataSpec(64, 10, (8, 8)), (20, 40), ConvOptions(method="bp"))
    net = build_model(config, seed=0)
    outs = net.layer_outputs(data.x_train[:8])
    torch.nn.functional.cross_entropy(net.readout(outs[-1].flatten(1)), data.y_train[:8]).backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.layers[0].parameters())  # end to end
    assert list(net.prediction_methods()) == ["readout"] and net.local_units() == [net]
    result = Trainer(net, TrainConfig(epochs=4, batch_size=64, device="cpu", optimizer=OptimizerConfig("adam", 1e-2))
                     ).fit(data.x_train, data.y_train, data.x_test, data.y_test)
    assert result.final["test_accuracy"] > 0.85 and "readout_loss" not in result.final
    with pytest.raises(ValueError, match="method 'bp' has no goodness"):
        net.layer_goodness(data.x_test[:2])
    with pytest.raises(ValueError, match="method 'bp' trains every layer with the head in every epoch"):
        ConvNet.build_config(DataSpec(64, 10, (8, 8)), (20, 40), ConvOptions(method="bp", layer_epochs="1,2"))


def test_bench_accuracy_records_conv_beside_the_backprop_cnn_of_the_same_layers(tmp_path, capsys):
    import json

    assert cli_main(["bench", "accuracy", "--dataset", "digits", "--variant", "conv", "--hidden", "20,40",
                     "--epochs", "3", "--batch-size", "64", "--lr", "0.01", "--opt", "layer_epochs=2,3", "--quiet",
                     "--results-dir", str(tmp_path), "--device", "cpu"]) == 0
    [path] = list(tmp_path.glob("accuracy-*.json"))
    result = json.loads(path.read_text())
    assert result["options"]["options"] == {"layer_epochs": "2,3"}
    assert result["ff"]["chosen_on"] == "validation" and set(result["ff"]["validation_accuracy_by_method"]) == {
        "goodness", "readout", "layer1"}
    assert result["bp"]["epochs"] == 3 and 0.5 < result["bp"]["test_accuracy"] <= 1.0
    assert "method=bp" in result["bp"]["model"]


def test_crop_flip_shifts_by_at_most_the_padding_and_mirrors_half_the_images():
    from ff_mcp.engine.conv import crop_flip

    images = torch.zeros(400, 1, 6, 6)
    images[:, 0, 2, 1] = 1.0  # one bright pixel at row 2, column 1
    out = crop_flip(images, 2, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and bool((out.sum(dim=(1, 2, 3)) <= 1).all())
    kept = out.flatten(1).argmax(dim=1)[out.flatten(1).sum(dim=1) > 0]
    rows, cols = kept // 6, kept % 6
    assert bool(((rows - 2).abs() <= 2).all())
    mirrored = (cols - (5 - 1)).abs() <= 2  # near column 4: the flipped image's copy of column 1
    straight = (cols - 1).abs() <= 2
    assert bool((mirrored | straight).all()) and 0.3 < mirrored.float().mean().item() < 0.9
    assert torch.equal(crop_flip(images, 0, torch.Generator().manual_seed(1))[:, :, 2].sum(dim=2).squeeze(1),
                       torch.ones(400))  # no padding: only flips, the pixel stays on its row


def test_augmentation_is_on_for_colour_images_by_default_and_refused_when_unknown():
    colour = ConvNet.build_config(DataSpec(3 * 8 * 8, 10, (3, 8, 8)), (20, 40), ConvOptions())
    grey = ConvNet.build_config(DataSpec(64, 10, (8, 8)), (20, 40), ConvOptions())
    assert (colour.augment, grey.augment) == ("crop-flip", "none")
    with pytest.raises(ValueError, match=r"augment must be one of \['none', 'crop-flip'\] \(or auto\), got 'mixup'"):
        ConvNet.build_config(DataSpec(64, 10, (8, 8)), (20, 40), ConvOptions(augment="mixup"))
    data = load_dataset("digits")
    config = ConvNet.build_config(DataSpec(64, 10, (8, 8)), (20, 40), ConvOptions(augment="crop-flip"))
    train = TrainConfig(epochs=2, batch_size=64, seed=2, device="cpu", optimizer=OptimizerConfig("adam", 1e-2))
    nets = [build_model(config, seed=2) for _ in range(2)]
    for net in nets:
        Trainer(net, train).fit(data.x_train[:256], data.y_train[:256])
    assert all(torch.equal(a, b) for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()))


def test_prediction_after_training_uses_running_statistics_and_checks_the_input_shape():
    data = load_dataset("digits")
    net = build_model(ConvNet.build_config(DataSpec(64, 10, (8, 8)), (20, 40), ConvOptions()), seed=0)
    Trainer(net, TrainConfig(epochs=1, batch_size=64, device="cpu")).fit(data.x_train[:256], data.y_train[:256])
    net.train()  # as a caller may leave it
    stats = net.layers[0].norm.running_mean.clone()
    scores = net.predict_scores(data.x_test[:5])
    assert torch.equal(stats, net.layers[0].norm.running_mean) and net.training  # nothing updated, mode kept
    assert torch.allclose(scores, net.eval().predict_scores(data.x_test[:5]))
    assert torch.allclose(scores, net.predict_scores(data.x_test[:5].reshape(5, 1, 8, 8)))  # images too
    with pytest.raises(ValueError, match=r"x must be rows of 64 values .* got \(5, 8, 8, 1\)"):
        net.predict_scores(data.x_test[:5].reshape(5, 8, 8, 1))


def test_ff_loss_goodness_and_normalisation_against_hand_computed_values():
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    g_pos, g_neg = torch.tensor([3.0, 1.0]), torch.tensor([0.0, 4.0])  # threshold 2
    expected = (softplus(2 - 3.0) + softplus(2 - 1.0) + softplus(0.0 - 2) + softplus(4.0 - 2)) / 4
    assert ff_loss(g_pos, g_neg).item() == pytest.approx(expected, rel=1e-6)
    h = torch.zeros(2, 2, 1, 2)
    h[0, 0, 0, 0], h[1, 1, 0, 1] = 2.0, -4.0  # mean squares 4 / 4 = 1 and 16 / 4 = 4
    assert image_goodness(h).tolist() == [1.0, 4.0]
    assert image_goodness(rms_normalise(h)).tolist() == pytest.approx([1.0, 1.0])


def ff_tiny() -> ConvNet:
    config = ConvConfig(in_features=2 * 6 * 6, num_classes=3, image_shape=(2, 6, 6), channels=(5, 4), pool=(1,),
                        cfse=False, loss="ff")
    return ConvNet(config, generator=torch.Generator().manual_seed(0))


def test_loss_ff_puts_the_labels_pattern_beside_the_image_and_the_mean_pattern_for_no_label():
    net = ff_tiny()
    assert net.label_patterns.shape == (3, 6, 6) and net.layers[0].conv.in_channels == 3
    images = torch.randn(2, 2, 6, 6)
    labelled = net.with_labels(images, torch.tensor([2, 0]))
    assert torch.equal(labelled[:, :2], images)
    assert torch.equal(labelled[0, 2], net.label_patterns[2]) and torch.equal(labelled[1, 2], net.label_patterns[0])
    assert torch.allclose(net.with_labels(images, None)[1, 2], net.label_patterns.mean(dim=0))
    again = ConvNet(net.config, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.label_patterns, net.label_patterns)  # drawn from the seed


def test_loss_ff_layers_learn_only_from_their_own_goodness_and_predict_all_labels_in_one_pass():
    net = ff_tiny()
    x = torch.rand(4, 72)
    h = net.with_labels(net.images(x), torch.tensor([0, 1, 2, 0]))
    for i in range(2):
        net.zero_grad(set_to_none=True)
        image_goodness(net.ff_activities(h)[i]).sum().backward()
        for j, layer in enumerate(net.layers):
            assert all((p.grad is not None) if j == i else (p.grad is None) for p in layer.parameters()), (i, j)
    net.eval()
    with torch.no_grad():
        batched = net.label_goodness(x, range(0, 2))
        for c in range(3):  # one label at a time: the same scores
            acts = net.ff_activities(net.with_labels(net.images(x), torch.full((4,), c)))
            assert torch.allclose(batched[:, c], image_goodness(acts[0]) + image_goodness(acts[1]), rtol=1e-5)
        assert torch.equal(net.predict_scores(x, "goodness"), net.label_goodness(x, range(1, 2)))


def test_conv_with_the_ff_loss_learns_digits_and_reloads_from_its_checkpoint(tmp_path):
    data = load_dataset("digits")
    out = tmp_path / "conv-ff.safetensors"
    assert cli_main(["train", "--dataset", "digits", "--variant", "conv", "--hidden", "20,40", "--opt", "loss=ff",
                     "--opt", "cfse=false", "--epochs", "20", "--batch-size", "64", "--lr", "0.01", "--eval-every", "20",
                     "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    saved = load_checkpoint(out)
    final = saved.metrics["final"]
    assert final["predict_method"] == "goodness" and final["test_accuracy"] > 0.75  # chance is 0.10
    assert "test_accuracy_readout" in final and "test_accuracy_layer1" in final
    assert "test_accuracy_layer2" not in final  # layer 2 alone is what goodness scores: not evaluated twice
    again = build_model(saved.model.config, seed=1)  # another seed's patterns: the checkpoint's come back
    again.load_state_dict(saved.model.state_dict())
    assert torch.equal(again.predict(data.x_test[:50]), saved.model.predict(data.x_test[:50]))
    layers = saved.model.layer_goodness(data.x_test[:3], torch.tensor([0, 1, 2]))
    assert len(layers) == 2 and layers[0]["goodness"].shape == (3,) and (layers[0]["p_positive"] <= 1).all()


def test_loss_ff_keeps_frozen_layers_and_a_late_readout_still_and_chunks_predictions_exactly():
    config = ConvConfig(in_features=72, num_classes=3, image_shape=(2, 6, 6), channels=(5, 4), pool=(1,), cfse=False,
                        loss="ff", layer_epochs=(1, 2), readout_from=1)
    net = build_model(config, seed=2)
    x, y = torch.rand(96, 72), torch.arange(96) % 3
    snapshots = []

    class Snap:
        def on_epoch_end(self, metrics):
            snapshots.append({k: v.clone() for k, v in net.state_dict().items()})

    start = {k: v.clone() for k, v in net.state_dict().items()}
    Trainer(net, TrainConfig(epochs=2, batch_size=32, seed=2, device="cpu", eval_every=5,
                             optimizer=OptimizerConfig("adam", 1e-2)), callbacks=[Snap()]).fit(x, y)
    first, second = snapshots
    assert not torch.equal(first["layers.0.conv.weight"], start["layers.0.conv.weight"])  # trained in epoch 1
    assert torch.equal(second["layers.0.conv.weight"], first["layers.0.conv.weight"])  # frozen in epoch 2
    assert not torch.equal(second["layers.1.conv.weight"], first["layers.1.conv.weight"])
    assert torch.equal(first["readout.weight"], start["readout.weight"])  # readout_from=1: not in epoch 1
    assert not torch.equal(second["readout.weight"], first["readout.weight"])
    net.eval()
    rows = torch.rand(200, 72)  # more than one chunk of 256 // 3 images
    with torch.no_grad():
        whole = net.label_goodness(rows, net.scored_layers())
    assert torch.allclose(net.predict_scores(rows, "goodness"), whole, rtol=1e-5, atol=1e-6)


def test_loss_distance_reads_each_layers_flattened_normalised_output_against_class_centroids():
    from ff_mcp.engine import distance as df

    config = ConvConfig(in_features=72, num_classes=3, image_shape=(2, 6, 6), channels=(5, 4), pool=(1,), cfse=False,
                        loss="distance")
    net = build_model(config, seed=0)
    assert [tuple(layer.centroids.shape) for layer in net.layers] == [(3, 5 * 6 * 6), (3, 4 * 3 * 3)]
    assert list(net.prediction_methods()) == ["fused", "summed", "readout", "layer1", "layer2"]
    for layer in net.layers:
        layer.centroids.normal_()
    net.eval()
    x = torch.rand(4, 72)
    with torch.no_grad():
        outs = net.layer_outputs(x)
        by_hand = []
        for h, layer in zip(outs, net.layers):
            z = h.flatten(1) / h.flatten(1).square().mean(dim=1, keepdim=True).sqrt()
            by_hand.append(-(z[:, None, :] - layer.centroids[None]).square().mean(dim=2))
        assert torch.allclose(net.predict_scores(x, "layer2"), by_hand[1], atol=1e-5)
        assert torch.allclose(net.predict_scores(x, "summed"), by_hand[0] + by_hand[1], atol=1e-5)
        fused = sum(torch.softmax(100.0 * g, dim=1) for g in by_hand)
        assert torch.allclose(net.predict_scores(x, "fused"), fused, atol=1e-3)  # scale 100 magnifies rounding
        good = net.layer_goodness(x, torch.tensor([0, 1, 2, 0]))
        assert torch.allclose(good[0]["goodness"], by_hand[0][torch.arange(4), torch.tensor([0, 1, 2, 0])], atol=1e-5)
    assert torch.allclose(df.class_goodness(torch.eye(2), torch.tensor([[1.0, 1.0]])), torch.tensor([[-0.5], [-0.5]]))


@pytest.mark.parametrize("collaborate", [False, True])
def test_loss_distance_steps_each_layer_on_its_own_loss_and_moves_its_centroids(collaborate):
    from ff_mcp.engine.protocol import Batch

    config = ConvConfig(in_features=72, num_classes=3, image_shape=(2, 6, 6), channels=(5, 4), pool=(1,), cfse=False,
                        loss="distance", collaborate=collaborate, layer_epochs=(1, 2))
    net = build_model(config, seed=0)
    session = net.training_session(TrainConfig(epochs=2, seed=0, optimizer=OptimizerConfig("adam", 1e-2)),
                                   torch.device("cpu"))
    x, y = torch.rand(12, 72), torch.arange(12) % 3
    stats = torch.zeros(3, 3)
    start = [layer.conv.weight.detach().clone() for layer in net.layers]
    session.step(Batch(x, y, torch.arange(12)), torch.Generator().manual_seed(0), range(0, 2), stats)
    assert all(bool(layer.seen.all()) for layer in net.layers)
    assert not any(torch.equal(w, layer.conv.weight) for w, layer in zip(start, net.layers))  # both layers stepped
    assert bool(torch.isfinite(stats).all()) and bool((stats[:2, 1] > stats[:2, 2]).all())  # own class nearer
    session.begin_epoch(1, range(0, 2), x, y)  # layer 1's window (1 epoch) is over: it only infers
    frozen = {k: v.clone() for k, v in net.layers[0].state_dict().items()}
    net.zero_grad(set_to_none=True)
    session.step(Batch(x, y, torch.arange(12)), torch.Generator().manual_seed(0), range(0, 2), stats)
    assert all(torch.equal(v, net.layers[0].state_dict()[k]) for k, v in frozen.items() if "running" not in k
               and "num_batches" not in k)  # weights and centroids still; batch norm's running statistics move
    assert all(p.grad is None for p in net.layers[0].parameters())
    assert all(p.grad is not None for p in net.layers[1].conv.parameters())


def test_conv_with_the_distance_loss_learns_digits_and_reloads_from_its_checkpoint(tmp_path):
    data = load_dataset("digits")
    out = tmp_path / "conv-distance.safetensors"
    assert cli_main(["train", "--dataset", "digits", "--variant", "conv", "--hidden", "16,32", "--opt", "loss=distance",
                     "--opt", "cfse=false", "--opt", "collaborate=true", "--epochs", "6", "--batch-size", "32",
                     "--eval-every", "6", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    saved = load_checkpoint(out)
    final = saved.metrics["final"]
    assert final["predict_method"] == "fused" and final["test_accuracy"] > 0.9, final  # chance is 0.10
    assert final["test_accuracy_layer2"] > 0.9 and "test_accuracy_summed" in final
    assert saved.model.config.collaborate and bool(saved.model.layers[1].seen.all())
    again = build_model(saved.model.config, seed=1)
    again.load_state_dict(saved.model.state_dict())  # the centroids come back with the weights
    again.eval()
    with torch.no_grad():
        assert torch.equal(again.predict(data.x_test), saved.model.eval().predict(data.x_test))
