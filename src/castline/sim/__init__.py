"""Die-casting hall simulator: machines, dies, shots, photographs, robot cells, replay."""
