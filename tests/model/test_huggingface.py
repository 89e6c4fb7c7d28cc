"""Model tooling on Hugging Face models built from tiny configs (nothing is downloaded)."""

import pytest
import torch

import dropkit as dk
from tests.model import zoo

pytest.importorskip("transformers")

TOKENS = torch.randint(0, 100, (2, 6), generator=torch.Generator().manual_seed(0))


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=TOKENS).logits


def random_in(model: torch.nn.Module, train: bool) -> bool:
    model.train(train)
    return not torch.equal(logits(model), logits(model))


def kinds(model: torch.nn.Module) -> dict[str, str]:
    return {site.name: site.kind for site in dk.dropout_sites(model)}


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_bert_attention_rate_takes_effect_on_each_attention_path(implementation):
    model = zoo.tiny_bert(attn_implementation=implementation)
    found = kinds(model)
    assert found["bert.encoder.layer.0.attention.self.dropout"] == "attention"
    assert found["bert.encoder.layer.0.attention.output.dropout"] == "element"
    assert found["config.attention_probs_dropout_prob"] == "attention"
    dk.set_dropout(model, 0.0)
    assert not random_in(model, train=True)
    changes = dk.set_dropout(model, 0.5, kinds=["attention"])
    assert {c.name for c in changes} == {
        "bert.encoder.layer.0.attention.self.dropout",
        "bert.encoder.layer.1.attention.self.dropout",
        "config.attention_probs_dropout_prob",
    }
    assert random_in(model, train=True)
    assert not random_in(model, train=False)


def test_bert_config_fields_survive_save_and_load(tmp_path):
    from transformers import BertForSequenceClassification

    model = zoo.tiny_bert()
    dk.set_dropout(model, 0.0, kinds=["element"])
    dk.set_dropout(model, 0.25, kinds=["attention"])
    model.save_pretrained(tmp_path)
    loaded = BertForSequenceClassification.from_pretrained(tmp_path)
    rates = {site.name: site.p for site in dk.dropout_sites(loaded)}
    assert rates["config.hidden_dropout_prob"] == 0.0
    assert rates["config.attention_probs_dropout_prob"] == 0.25
    assert rates["bert.encoder.layer.1.attention.self.dropout"] == 0.25
    assert rates["bert.embeddings.dropout"] == 0.0


def test_gpt2_attention_dropout_module_rate_is_what_sdpa_reads():
    model = zoo.tiny_gpt2()
    found = kinds(model)
    assert found["transformer.h.0.attn.attn_dropout"] == "attention"
    assert found["transformer.h.0.attn.resid_dropout"] == "element"
    assert found["config.attn_pdrop"] == "attention"
    dk.set_dropout(model, 0.0)
    assert not random_in(model, train=True)
    dk.set_dropout(model, 0.5, kinds=["attention"])
    assert model.config.attn_pdrop == 0.5 and model.config.resid_pdrop == 0.0
    assert random_in(model, train=True)


def test_llama_attention_float_is_set_and_read_at_call_time():
    model = zoo.tiny_llama(attention_dropout=0.0)
    assert kinds(model)["model.layers.0.self_attn.attention_dropout"] == "attention"
    assert not random_in(model, train=True)
    dk.set_dropout(model, 0.5)
    assert model.model.layers[1].self_attn.attention_dropout == 0.5
    assert model.config.attention_dropout == 0.5
    assert random_in(model, train=True)


def test_mc_dropout_samples_attention_dropout_of_a_model_in_eval():
    model = zoo.tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.3).eval()
    flags = [m.training for m in model.modules()]
    reference = logits(model)
    with dk.mc_dropout(model):
        first, second = logits(model), logits(model)
    assert not torch.equal(first, second)
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(logits(model), reference)


def test_mc_predict_reads_logits_from_model_outputs():
    model = zoo.tiny_bert(attention_probs_dropout_prob=0.2).eval()
    inputs = {"input_ids": TOKENS, "attention_mask": torch.ones_like(TOKENS)}
    torch.manual_seed(0)
    prediction = dk.mc_predict(model, inputs, samples=6, batch_size=12)
    assert prediction.mean.shape == (2, 3)
    assert torch.allclose(prediction.mean.sum(-1), torch.ones(2))
    assert (prediction.std > 0).all()  # every output varies over the MC samples


def test_check_finds_nothing_in_a_clean_model_and_flags_p_one():
    model = zoo.tiny_bert()
    assert len(dk.check(model, {"input_ids": TOKENS})) == 0
    with pytest.warns(UserWarning, match="will not keep them: dropout = 1"):
        dk.set_dropout(model, 1.0, names=["dropout"])
    report = dk.check(model, {"input_ids": TOKENS})
    assert [(f.kind, f.name, f.severity) for f in report] == [
        ("rate_out_of_range", "dropout", "error")
    ]
