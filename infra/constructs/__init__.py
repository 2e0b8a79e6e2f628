"""One construct per concern; `infra.stack.PssyncStack` composes them."""
