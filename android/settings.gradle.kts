// The door-core Android library on its own; an app includes it with
// `includeBuild("path/to/door-core/android")` or publishes the AAR.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "door-core"
