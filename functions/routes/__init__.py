"""One router per resource: friendly predict, and the Open Inference Protocol v2 routes."""
