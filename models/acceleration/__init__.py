"""Speed-ups that keep the function: attention through
scaled_dot_product_attention, the patch embedding as one matrix product,
predict replayed from CUDA graphs; ``speedups.apply_speedups`` applies the
recognizer's options."""
