# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from trl_icrm.rewards.math_verify import MathVerifyReward, completion_text


@pytest.fixture(scope="module")
def reward() -> MathVerifyReward:
    return MathVerifyReward()


# Greedy completions of the embedded SmolLM2-135M-Instruct (chat template, default instruction, max_new_tokens=128) on
# generated test problems, copied verbatim: (completion, solution, answer the verifier must extract, reward). The model
# never writes \boxed{}: it ends with "The final answer is N." or a sentence with the number, or is cut off mid-list
# (then the last number of the text counts, never a list marker). Labels were set by reading each completion.
EMBEDDED_MODEL_COMPLETIONS = [
    # difficulty 1: Ravi has $15 in his wallet. His grandmother gives him enough money to have 5 times as much as ...
    (
        "To solve this math problem, we need to break it down step by step.\n\nRavi has $15 in his wallet. His grandmother gives him enough money to have 5 times as much as before. So, Ravi has 5 * 15 = 75 dollars.\n\nNow, we need to find out how many dollars Ravi has now. We can do this by dividing 75 by 5, which gives us 15.\n\nSo, the final answer is 15 dollars.\n\nRavi has 15 dollars now.",
        "75",
        "15",
        0.0,
    ),
    # difficulty 1: Tom has 22 apples. He eats 8 of the apples. How many apples does Tom have now?
    (
        "1. First, we need to find out how many apples Tom has.\n2. We can do this by dividing the total number of apples Tom has by the number of apples eaten by Tom.\n3. So, 22 apples / 8 apples eaten = 3 apples per apple eaten.\n4. Now we can add this to the total number of apples Tom has: 22 apples + 3 apples = 25 apples Tom has now.\n\nSo, the final answer is 25.",
        "14",
        "25",
        0.0,
    ),
    # difficulty 2: A train leaves the first station with 52 passengers. 16 passengers leave the train at the ...
    (
        "To solve this math problem, we need to break it down step by step.\n\nStep 1: Calculate the total number of passengers on the train.\nThe total number of passengers on the train is 52 + 16 = 88.\n\nStep 2: Calculate the number of passengers that are on the train now.\nThe number of passengers that are on the train now is 5 * 16 = 72.\n\nSo, there are 72 passengers on the train now.",
        "180",
        "72",
        0.0,
    ),
    # difficulty 2: Mia has 40 apples. She gives 2 apples to each of 5 friends. How many apples does Mia have now?
    (
        "1. First, we need to find out how many apples Mia has.\n2. To find the number of apples Mia has, we can divide the number of apples Mia has by the number of friends she has.\n3. So, 40 / 5 = 8 apples Mia has.\n\nNow, we need to find out how many apples Mia has now.\n\nMia has 40 apples.\n\nSo, Mia has 8 apples now.\n\nThe final answer is 8.",
        "30",
        "8",
        0.0,
    ),
    # difficulty 4: Ava has $47 in her wallet. Her teacher gives her $30. She spends $14 on a book. She buys 5 ...
    (
        "1. First, we need to find out how much money Ava has left.\n2. We can do this by subtracting the total cost of the books from the total cost of the notebooks.\n3. So, 47 - 30 = 12 is the amount of money Ava has left.\n4. Now, we need to find out how many dollars she has left.\n5. We can do this by dividing 12 by 12, which is 1.\n6. So, Ava has 1 dollar left.\n\nSo, the final answer is 1",
        "48",
        "1",
        0.0,
    ),
    # difficulty 3: A baker makes 16 cookies in the morning. 2 customers each buy 7 cookies. The baker packs all the ...
    (
        "1. The baker makes 16 cookies in the morning.\n2. The baker makes 2 customers each buy 7 cookies.\n3. The total number of cookies sold is 16 + 2 = 20 cookies.\n4. The shop now has 2 boxes of cookies.\n5. The shop now has 2 boxes of cookies.\n6. The shop now has 1 box of cookies.\n7. The shop now has 1 box of cookies.\n8. The shop now has 1 box of cookies.\n\nThe final answer is 1.",
        "1",
        "1",
        1.0,
    ),
    # difficulty 1: A school library has 29 books on a shelf. Students return 28 books to the shelf. How many books ...
    (
        "1. First, we need to find out how many books are on the shelf.\n2. So, we multiply the number of books by the number of books per shelf.\n3. So, 28 books * 2 shelves = 56 books.\n\nNow, we need to find out how many books are on the shelf.\n\nWe can do this by dividing the number of books by the number of shelves.\n\nSo, 56 books / 2 shelves = 24 books per shelf.\n\nSo, the answer is 24.\n\nThe final answer is ",
        "57",
        "24",
        0.0,
    ),
    # difficulty 3: Ravi has 46 apples. He picks 21 more apples from the tree. He buys 4 bags with 3 apples in each ...
    (
        "To solve this math problem, we need to break it down step by step.\n\nRavi has 46 apples. He picks 21 more apples from the tree. He buys 4 bags with 3 apples in each bag. So, he has 46 + 21 = 67 bags of apples.\n\nNow, let's find out how many apples Ravi has now.\n\nRavi has 67 bags of apples.\n\nRavi has 46 apples.\n\nRavi has 67 - 46 = 14 apples left.",
        "79",
        "14",
        0.0,
    ),
    # difficulty 1: A train leaves the first station with 78 passengers. 25 passengers leave the train at the ...
    (
        "1. First, we need to find the total number of passengers on the train.\n2. So, we multiply the number of passengers on the train by 78.\n3. This is a fraction of 100, so we round it to 101.\n4. Now, we add 1 to this result to get the total number of passengers on the train.\n5. So, 101 + 1 = 102.\n6. Now, we need to find the number of passengers on the train.\n7. So, we multiply the number of passengers",
        "53",
        "102",
        0.0,
    ),
]


@pytest.mark.parametrize(
    "completion, solution, expected",
    [
        ("So the total is \\boxed{12}.", "12", 1.0),
        ("$12$", "12", 1.0),
        ("The answer is 12.", "12", 1.0),
        ("12 apples", "12", 1.0),
        ("She has 41 - 16 = 25 apples left.", "25", 1.0),
        ("x = 12", "12", 1.0),
        ("**Answer:** 12", "12", 1.0),
        ("\\(12\\)", "12", 1.0),
        ("So, Lena has 9 - 3 = 6 apples left.\n#### 6\nLena has 6 apples now.", "6", 1.0),  # GSM8K style
        ("The final answer is $\\boxed{12}$. I hope it is correct.", "12", 1.0),
        # Thousands separators, decimals and fractions equal to the integer.
        ("1,234", "1234", 1.0),
        ("The total is $1,234.", "1234", 1.0),
        ("1234", "1,234", 1.0),
        ("12.0", "12", 1.0),
        ("\\boxed{\\frac{24}{2}}", "12", 1.0),
        ("24/2", "12", 1.0),
        ("\\boxed{12}", "\\frac{24}{2}", 1.0),
        # Wrong answers.
        ("The answer is 13.", "12", 0.0),
        ("\\boxed{12.5}", "12", 0.0),
        ("\\boxed{120}", "12", 0.0),
        ("She has 12 apples, then gives 3 away.", "12", 0.0),  # the last number counts
        # \boxed{} wins over any later number; an empty \boxed{} is skipped.
        ("\\boxed{12}, since 3 * 4 = 12 and 7 is odd", "12", 1.0),
        ("Put it in \\boxed{}: it is 12", "12", 1.0),
        # No answer at all.
        ("", "12", 0.0),
        ("   ", "12", 0.0),
        ("I do not know.", "12", 0.0),
    ],
)
def test_scores(reward, completion, solution, expected):
    assert reward(completions=[completion], solution=[solution]) == [expected]


@pytest.mark.parametrize("completion, solution, answer, expected", EMBEDDED_MODEL_COMPLETIONS)
def test_embedded_model_completions(reward, completion, solution, answer, expected):
    assert reward.extract(completion) == answer
    assert reward(completions=[completion], solution=[solution]) == [expected]
    assert reward(completions=[[{"role": "assistant", "content": completion}]], solution=[answer]) == [1.0]


def test_list_markers_are_not_answers(reward):
    cut_off = EMBEDDED_MODEL_COMPLETIONS[-1][0]
    assert cut_off.endswith("7. So, we multiply the number of passengers")
    assert reward.extract(cut_off) == "102"
    assert MathVerifyReward(ignore_list_markers=False).extract(cut_off) == "7"
    assert reward.extract("Step 1: add them\nStep 2: 3 + 4 = 7\n3. Then") == "7"
    assert reward.extract("The total is\n12.") == "12"


def test_conversational_completions(reward):
    completions = [
        [{"role": "assistant", "content": "3 + 4 = 7, so \\boxed{7}"}],
        [{"role": "assistant", "content": "It is 8."}],
        [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "The answer is "}, {"type": "text", "text": "7"}],
            }
        ],
        [
            {"role": "assistant", "content": "7"},
            {"role": "tool", "content": "error"},
            {"role": "assistant", "content": "9"},
        ],
        [],
    ]
    assert reward(completions=completions, solution=["7"] * 5) == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert completion_text([{"role": "assistant", "content": None}]) == ""


def test_trl_call_signature_and_logging(reward):
    logged_metrics, logged_columns = {}, {}
    rewards = reward(
        prompts=[[{"role": "user", "content": "2+2?"}]] * 3,
        completions=["\\boxed{4}", "5", "no idea"],
        completion_ids=[[1], [2], [3]],
        solution=["4", "4", "4"],
        difficulty=[1, 1, 1],
        trainer_state=None,
        log_extra=lambda column, values: logged_columns.__setitem__(column, values),
        log_metric=lambda name, value: logged_metrics.__setitem__(name, value),
    )
    assert rewards == [1.0, 0.0, 0.0]
    assert logged_metrics == pytest.approx({"math_verify/accuracy": 1 / 3, "math_verify/extracted": 2 / 3})
    assert logged_columns == {"math_verify/answer": ["4", "5", None]}
    assert reward.__name__ == "math_verify"
    assert MathVerifyReward(name="correct").__name__ == "correct"


def test_latex_reference_answers_are_read_whole(reward):
    """MATH-style reference answers are one LaTeX expression: `3\\sqrt{13}` is not the number 3, `6 - 5i` not 5."""
    answers = ["3\\sqrt{13}", "6 - 5i", "1,-2", "\\left( 3, \\frac{\\pi}{2} \\right)", "18", "\\frac{1}{2}"]
    assert reward(completions=[f"So \\boxed{{{a}}}." for a in answers], solution=answers) == [1.0] * len(answers)
    assert (
        reward(completions=["So \\boxed{3}.", "So \\boxed{5}.", "So \\boxed{-2}."], solution=answers[:3]) == [0.0] * 3
    )


def test_missing_solution_gives_none(reward):
    assert reward(completions=["12", "12", "12"], solution=["12", None, ""]) == [1.0, None, None]
    with pytest.raises(ValueError, match="solution"):
        reward(completions=["12"])
    with pytest.raises(ValueError, match="2 completions but 1 solutions"):
        reward(completions=["1", "2"], solution=["1"])


def test_extract(reward):
    assert reward.extract("3 + 4 = 7 apples") == "7"
    assert reward.extract("\\boxed{\\frac{24}{2}}") == "12"
    assert reward.extract("12.0") == "12"
    assert reward.extract("2.50 dollars") == "2.5"
    assert reward.extract("nothing") is None


def test_anchored_only_mode():
    strict = MathVerifyReward(try_extract_without_anchor=False)
    assert strict(completions=["\\boxed{12}", "The answer is 12", "3 * 4 = 12"], solution=["12"] * 3) == [
        1.0,
        1.0,
        0.0,
    ]


def test_works_outside_the_main_thread(reward):
    completions = ["\\boxed{12}", "The answer is 12.", "$13$", "= 12"]
    expected = [1.0, 1.0, 0.0, 1.0]
    assert threading.current_thread() is threading.main_thread()
    assert reward(completions=completions, solution=["12"] * 4) == expected

    results, errors = [], []

    def worker():
        try:
            results.append(reward(completions=completions, solution=["12"] * 4))
        except Exception as error:  # noqa: BLE001 - surfaced below
            errors.append(error)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=60)
    assert not errors and results == [expected]

    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(lambda c: reward(completions=[c], solution=["12"])[0], completions * 3))
    assert outputs == expected * 3


def test_math_verify_alone_fails_off_the_main_thread():
    """Guards the reason for the thread handling: math-verify's default timeout uses signals."""
    from math_verify import parse

    errors = []
    thread = threading.Thread(target=lambda: errors.append(_raises(lambda: parse("$1$", raise_on_error=True))))
    thread.start()
    thread.join(timeout=60)
    assert errors == [True]


def _raises(function) -> bool:
    try:
        function()
    except ValueError:
        return True
    return False


def test_trl_sees_the_name():
    from trl.trainer.utils import get_callable_name, is_async_callable

    assert get_callable_name(MathVerifyReward()) == "math_verify"
    assert not is_async_callable(MathVerifyReward())


@pytest.mark.slow
def test_embedded_model_greedy_answers_are_scored(default_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_icrm.data.math_problems import make_arithmetic_problems

    problems = make_arithmetic_problems(num_train=0, num_test=4, difficulties=[1, 2], split="test")
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32).eval()
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in problems["prompt"]]
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        outputs = model.generate(
            **inputs,
            max_new_tokens=128,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
    completions = tokenizer.batch_decode(outputs[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    reward = MathVerifyReward()
    rewards = reward(completions=completions, solution=problems["solution"])
    assert all(value in (0.0, 1.0) for value in rewards)
    # The model writes its answer as a plain number ("The final answer is 8."), which must be found.
    assert sum(reward.extract(completion) is not None for completion in completions) >= 3, completions
