"""Publishing to the Hugging Face Hub: model cards, sanitizing, staging and pushing."""
