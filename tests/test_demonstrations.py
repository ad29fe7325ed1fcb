# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import numpy as np
import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from trl_icrm.demonstrations import (
    DemonstrationRenderer,
    DemonstrationTemplate,
    MalformedDemonstrationError,
    QueryTooLongError,
)
from trl_icrm.trainer.icrm_trainer import DemonstrationPool


@pytest.fixture(scope="module")
def renderer(default_model_dir):
    return DemonstrationRenderer(AutoTokenizer.from_pretrained(default_model_dir))


DEMOS = [
    {"prompt": f"Question {i}?", "chosen": f"Short {i}.", "rejected": f"A much longer answer number {i}."}
    for i in range(6)
]


def test_rendering_is_deterministic_and_position_independent(renderer):
    first = renderer.encode_pair("Q?", "yes", "no", DEMOS[:3])
    second = renderer.encode_pair("Q?", "yes", "no", DEMOS[:3])
    assert first == second
    ids = [renderer.encode_demonstration(d) for d in DEMOS[:3]]
    prefix = renderer.build_prefix(ids)
    assert prefix == renderer.header_ids + ids[0] + ids[1] + ids[2] + renderer.footer_ids
    assert first.chosen_ids == prefix + renderer.encode_query("Q?", "yes")
    assert (
        renderer.render_demonstration(DEMOS[0])
        == "Prompt: Question 0?\nPreferred: Short 0.\nNot preferred: A much longer answer number 0.\n\n"
    )


def test_no_demonstrations_gives_the_plain_trl_query(renderer):
    encoded = renderer.encode_pair("Q?", "yes", "no", [])
    tokenizer = renderer.tokenizer
    assert encoded.chosen_ids == tokenizer("Q?yes" + tokenizer.eos_token)["input_ids"]
    assert (encoded.num_demonstrations, encoded.num_dropped) == (0, 0)


def test_conversational_query_uses_chat_template(renderer):
    prompt = [{"role": "user", "content": "Hi?"}]
    chosen = [{"role": "assistant", "content": "Hello."}]
    ids = renderer.encode_query(prompt, chosen)
    expected = renderer.tokenizer.apply_chat_template(prompt + chosen, tokenize=True, return_dict=True)["input_ids"]
    assert ids == list(expected)
    demo = {"prompt": prompt, "chosen": chosen, "rejected": [{"role": "assistant", "content": "Go away."}]}
    assert renderer.render_demonstration(demo) == "Prompt: user: Hi?\nPreferred: Hello.\nNot preferred: Go away.\n\n"


def test_dropping_keeps_whole_demonstrations(renderer):
    ids = [renderer.encode_demonstration(d) for d in DEMOS]
    query = renderer.encode_query("Q?", "yes")
    overhead = len(renderer.header_ids) + len(renderer.footer_ids) + len(query)
    max_length = overhead + len(ids[0]) + len(ids[1]) + len(ids[2]) // 2  # room for two and a half
    encoded = renderer.assemble(query, ids, max_length=max_length)
    assert (encoded.num_demonstrations, encoded.num_dropped) == (2, 4)
    assert encoded.prefix_ids == renderer.header_ids + ids[0] + ids[1] + renderer.footer_ids
    assert len(encoded.input_ids) <= max_length
    pair = renderer.assemble_pair(query, renderer.encode_query("Q?", "no, certainly not " * 3), ids, max_length)
    assert pair.num_demonstrations <= 2 and pair.num_dropped == 6 - pair.num_demonstrations
    assert len(pair.rejected_ids) <= max_length


def test_overlong_query_is_a_clear_error(renderer):
    with pytest.raises(QueryTooLongError, match="my example.*max_length=5"):
        renderer.encode_pair("A long prompt " * 10, "yes", "no", DEMOS, max_length=5, name="my example")


def test_malformed_demonstrations_name_the_key(renderer):
    with pytest.raises(MalformedDemonstrationError, match="missing key 'rejected'"):
        renderer.encode_demonstration({"prompt": "p", "chosen": "c"})
    with pytest.raises(MalformedDemonstrationError, match="'chosen' must be a string"):
        renderer.encode_demonstration({"prompt": "p", "chosen": 3, "rejected": "r"})


def test_template_round_trip_and_unknown_fields():
    template = DemonstrationTemplate(header="H\n")
    assert DemonstrationTemplate.from_dict(template.to_dict()) == template
    with pytest.raises(ValueError, match="Unknown"):
        DemonstrationTemplate.from_dict({"headr": "x"})


def test_an_example_is_never_its_own_demonstration():
    groups = ["a"] * 5 + ["b"] * 4
    demonstrations = Dataset.from_dict({"demo_ids": [[i] for i in range(len(groups))]})
    members = {g: np.array([i for i, x in enumerate(groups) if x == g]) for g in set(groups)}
    pool = DemonstrationPool(demonstrations, groups, members)
    for index in range(len(groups)):
        for seed in range(50):
            drawn = [ids[0] for ids in pool.draw(index, np.random.default_rng(seed), 0, 8)]
            assert index not in drawn
            assert all(groups[j] == groups[index] for j in drawn)
            assert len(set(drawn)) == len(drawn) <= members[groups[index]].size - 1


# The one sampler
def test_seeded_draws_depend_only_on_seed_and_keys():
    import zlib

    from trl_icrm.demonstrations import draw_k, sample_without_replacement, seeded_rng, stable_seed

    assert stable_seed(7) == 7 and stable_seed("train") == zlib.crc32(b"train")
    assert stable_seed(("key", "prompt")) == zlib.crc32(repr(("key", "prompt")).encode())
    # The trainer's draw of (seed, epoch, pool, row) is the one it made before the sampler was shared.
    legacy = np.random.default_rng([3, 1, zlib.crc32(b"train"), 5])
    assert seeded_rng(3, 1, "train", 5).integers(0, 1000, 8).tolist() == legacy.integers(0, 1000, 8).tolist()
    items = list(range(10))
    first = sample_without_replacement(items, 4, seeded_rng(0, "a"))
    assert first == sample_without_replacement(items, 4, seeded_rng(0, "a")) and len(set(first)) == 4
    assert first != sample_without_replacement(items, 4, seeded_rng(0, "b"))
    assert sample_without_replacement(items, 0, seeded_rng(0)) == []
    with pytest.raises(ValueError, match="Cannot draw 11 demonstrations from a pool of 10"):
        sample_without_replacement(items, 11, seeded_rng(0))
    ks = {draw_k(seeded_rng(0, i), 1, 4, available=3) for i in range(200)}
    assert ks == {1, 2, 3}  # K ~ U{1..4} capped at what the group offers
    assert {draw_k(seeded_rng(0, i), 2, 4, available=1) for i in range(20)} == {1}


def test_bank_draws_from_the_group_and_never_the_item_itself():
    from trl_icrm.demonstrations import DemonstrationBank, seeded_rng

    rows = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b", "group": i % 2, "question": f"q{i}"} for i in range(8)]
    bank = DemonstrationBank.from_rows(rows, key_column="question")
    assert sorted(bank.groups) == ["0", "1"] and "0" in bank and "2" not in bank
    for seed in range(20):
        drawn = bank.draw("0", 3, seeded_rng(seed, "q2"), exclude="q2")
        assert len(drawn) == 3 and all(d["prompt"] in {"q0", "q4", "q6"} for d in drawn)
        assert set(drawn[0]) == {"prompt", "chosen", "rejected"}
    assert len(bank.draw("0", 10, seeded_rng(0), exclude="q0")) == 3  # capped at what is left
    assert bank.draw("missing", 3, seeded_rng(0), exclude="q0") == []
    with pytest.raises(ValueError, match="Cannot draw 10"):
        bank.draw("0", 10, seeded_rng(0), strict=True)
