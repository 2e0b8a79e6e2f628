"""Operations: inspecting and replaying dead-letter stores."""
