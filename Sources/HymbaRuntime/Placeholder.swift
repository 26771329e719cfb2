public enum HymbaRuntimeModule {}
