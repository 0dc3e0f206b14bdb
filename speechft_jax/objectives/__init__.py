"""Self-supervised training objectives: HuBERT masked-prediction targets (k-means or a teacher's
codewords) and SCORE's correspondence fine-tuning."""
