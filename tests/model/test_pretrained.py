"""Doing exactly what was asked on Hugging Face families built from tiny configs."""

import warnings

import pytest
import torch

import dropkit as dk
from tests.model import zoo

pytest.importorskip("transformers")


def rates(model: torch.nn.Module) -> dict[str, float]:
    return {site.name: site.p for site in dk.dropout_sites(model)}


def kinds(model: torch.nn.Module) -> dict[str, str]:
    return {site.name: site.kind for site in dk.dropout_sites(model)}


def test_bare_set_dropout_leaves_bart_layerdrop_off():
    model = zoo.tiny_bart()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every rate lands in the config: no warning
        changes = dk.set_dropout(model, 0.1)
    assert not [c for c in changes if c.kind == "layer"]
    assert model.config.encoder_layerdrop == 0.0 and model.model.encoder.layerdrop == 0.0
    assert model.config.attention_dropout == 0.1
    dk.set_dropout(model, 0.2, kinds=["layer"])
    assert model.config.encoder_layerdrop == 0.2 and model.model.decoder.layerdrop == 0.2


def test_t5_sublayer_dropout_is_residual_and_attention_rates_warn(tmp_path):
    from transformers import T5ForConditionalGeneration

    model = zoo.tiny_t5()
    found = kinds(model)
    assert found["encoder.block.0.layer.0.dropout"] == "element"  # T5LayerSelfAttention
    assert found["decoder.block.0.layer.1.dropout"] == "element"  # T5LayerCrossAttention
    assert found["encoder.block.0.layer.0.SelfAttention.dropout"] == "attention"
    with pytest.warns(UserWarning, match=r"encoder\.block\.0\.layer\.0\.SelfAttention\.dropout"):
        dk.set_dropout(model, 0.3, kinds=["attention"])
    model.save_pretrained(tmp_path)
    loaded = T5ForConditionalGeneration.from_pretrained(tmp_path)
    assert rates(loaded)["encoder.block.0.layer.0.SelfAttention.dropout"] == 0.1  # as warned


def test_bert_rate_without_config_field_warns_and_is_lost_on_reload(tmp_path):
    from transformers import BertForSequenceClassification

    model = zoo.tiny_bert()
    with pytest.warns(UserWarning, match=r"will not keep them: dropout = 0\.4 \(reloads as 0\.1\)"):
        dk.set_dropout(model, 0.4, names=["dropout"])
    model.save_pretrained(tmp_path)
    assert BertForSequenceClassification.from_pretrained(tmp_path).dropout.p == 0.1


def test_wav2vec2_spec_augment_is_a_kind_that_can_be_turned_off():
    model = zoo.tiny_wav2vec2().train()
    found = kinds(model)
    assert found["config.mask_time_prob"] == "mask" and found["config.layerdrop"] == "layer"
    audio = torch.randn(2, 400, generator=torch.Generator().manual_seed(0))

    def random_in_train() -> bool:
        with torch.no_grad():
            return not torch.equal(model(audio).logits, model(audio).logits)

    dk.set_dropout(model, 0.0)
    assert model.config.mask_time_prob == 0.05 and model.config.layerdrop == 0.1
    assert random_in_train()  # SpecAugment masking and LayerDrop are still on
    changes = dk.set_dropout(model, 0.0, kinds=["mask", "layer"])
    assert {c.name for c in changes} == {
        "config.mask_time_prob",
        "config.mask_feature_prob",
        "config.layerdrop",
    }
    assert not random_in_train()


def test_whisper_reports_its_spec_augment_fields_as_mask():
    model = zoo.tiny_whisper()
    assert kinds(model)["config.mask_time_prob"] == "mask"
    assert kinds(model)["model.encoder.layerdrop"] == "layer"
    changes = dk.set_dropout(model, 0.0, kinds=["mask"])
    assert [c.name for c in changes] == ["config.mask_time_prob", "config.mask_feature_prob"]


def test_llama_flex_attention_warns_before_attention_dropout():
    model = zoo.tiny_llama(attn_implementation="flex_attention")
    with pytest.warns(
        UserWarning, match=r"attn_implementation='flex_attention'.*attention_dropout"
    ):
        dk.set_dropout(model, 0.1, kinds=["attention"])
    schedule = dk.schedules.linear(0.0, 0.1, steps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler = dk.DropoutScheduler(
            zoo.tiny_llama(attn_implementation="flex_attention"), schedule, kinds=["attention"]
        )
    with pytest.warns(UserWarning, match="flex_attention"):
        scheduler.step()  # the first step with attention dropout above 0
    sdpa = zoo.tiny_llama(attn_implementation="sdpa")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dk.set_dropout(sdpa, 0.1, kinds=["attention"])


def test_vit_and_gpt2_rates_survive_reload_silently():
    for model in (zoo.tiny_vit(), zoo.tiny_gpt2()):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dk.set_dropout(model, 0.2)
        assert all(site.p == 0.2 for site in dk.dropout_sites(model) if site.kind != "layer")


def test_policy_leaves_spec_augment_and_layerdrop_alone_and_keeps_the_ctc_head_saved():
    model = zoo.tiny_wav2vec2()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the head's rate lands in config.final_dropout
        report = dk.apply_policy(model, dk.Policy.from_scratch())
    assert model.config.mask_time_prob == 0.05 and model.config.layerdrop == 0.1
    assert model.config.final_dropout == 0.5 and model.dropout.p == 0.5
    assert not [c for c in report if c.kind in ("mask", "layer")]
