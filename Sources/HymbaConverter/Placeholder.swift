public enum HymbaConverterModule {}
