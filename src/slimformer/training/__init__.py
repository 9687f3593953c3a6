"""Training steps: fine-tuning a teacher, distilling a student, searching its settings."""
