public enum HymbaTokenizerModule {}
