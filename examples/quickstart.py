# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""PLACEHOLDER main job: runs the embedded model end to end until the GRPO math recipe lands.

It converts the embedded SmolLM2-135M-Instruct on first use, then answers a few arithmetic questions through the
chat template with greedy decoding, on CPU.

    python examples/quickstart.py
"""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_icrm import DEFAULT_MODEL, resolve_model_name_or_path


def main() -> None:
    path = resolve_model_name_or_path(DEFAULT_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    print(f"[placeholder demo] embedded model {DEFAULT_MODEL} at {path}")
    for question in ["What is 7 + 5?", "What is 12 * 3?", "Tom has 4 apples and buys 9 more. How many does he have?"]:
        inputs = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=48, do_sample=False)
        answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        print(f"Q: {question}\nA: {answer.strip()}\n")


if __name__ == "__main__":
    main()
