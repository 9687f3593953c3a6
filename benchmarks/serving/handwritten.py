"""The servers a user writes by hand today, for `docs/serving.md`'s comparison: FastAPI around
a transformers `pipeline()` of the PyTorch teacher, or around an optimum ORTModel
`pipeline()` of the teacher's ONNX int8. Run with uvicorn, one process:

    python benchmarks/serving/handwritten.py pytorch outputs/optimize-full/teacher --port 8081
    python benchmarks/serving/handwritten.py ort outputs/.../teacher-onnx-int8 --port 8082
"""

from __future__ import annotations

import argparse

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import AutoTokenizer, pipeline


class Query(BaseModel):
    inputs: str | list[str]


def build(kind: str, folder: str, threads: int) -> FastAPI:
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if kind == "pytorch":
        classify = pipeline("text-classification", model=folder, tokenizer=tokenizer)
    else:
        import onnxruntime
        from optimum.onnxruntime import ORTModelForSequenceClassification

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        model = ORTModelForSequenceClassification.from_pretrained(folder, session_options=options)
        classify = pipeline("text-classification", model=model, tokenizer=tokenizer)
    app = FastAPI()

    @app.post("/predict")
    def predict(query: Query):  # a plain def: FastAPI runs it in its thread pool
        return classify(query.inputs)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["pytorch", "ort"])
    parser.add_argument("folder")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    uvicorn.run(build(args.kind, args.folder, args.threads), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)
